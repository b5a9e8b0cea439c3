package schemas

import "fmt"

// ConfigSchema is the JSON Schema (draft-07) of the starter's configuration file, the one
// editors are pointed at by the yaml-language-server modeline of examples/config.yaml.
// The starter validates the file with it; this package only publishes it.
func ConfigSchema() []byte {
	b, err := files.ReadFile("config.schema.json")
	if err != nil {
		panic(fmt.Sprintf("schemas: read config.schema.json: %v", err)) // embedded: cannot happen
	}
	return b
}
