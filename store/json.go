package store

import (
	"database/sql/driver"
	"encoding/json"
	"fmt"
)

// JSONMap is a jsonb object column. A nil map is stored as {}.
type JSONMap map[string]any

// Value implements driver.Valuer.
func (m JSONMap) Value() (driver.Value, error) {
	if m == nil {
		return []byte("{}"), nil
	}
	return json.Marshal(map[string]any(m))
}

// Scan implements sql.Scanner.
func (m *JSONMap) Scan(src any) error {
	b, err := jsonBytes(src)
	if err != nil || b == nil {
		*m = nil
		return err
	}
	return json.Unmarshal(b, (*map[string]any)(m))
}

// StringMap is a jsonb object of strings, such as extra OAuth2 token-request parameters.
type StringMap map[string]string

// Value implements driver.Valuer.
func (m StringMap) Value() (driver.Value, error) {
	if m == nil {
		return []byte("{}"), nil
	}
	return json.Marshal(map[string]string(m))
}

// Scan implements sql.Scanner.
func (m *StringMap) Scan(src any) error {
	b, err := jsonBytes(src)
	if err != nil || b == nil {
		*m = nil
		return err
	}
	return json.Unmarshal(b, (*map[string]string)(m))
}

// StringList is a nullable jsonb array of strings, such as the remote member ids last
// written to a group. Nil is stored as NULL, meaning "never written".
type StringList []string

// Value implements driver.Valuer.
func (l StringList) Value() (driver.Value, error) {
	if l == nil {
		return nil, nil
	}
	return json.Marshal([]string(l))
}

// Scan implements sql.Scanner.
func (l *StringList) Scan(src any) error {
	b, err := jsonBytes(src)
	if err != nil || b == nil {
		*l = nil
		return err
	}
	out := []string{}
	if err := json.Unmarshal(b, &out); err != nil {
		return err
	}
	*l = out
	return nil
}

func jsonBytes(src any) ([]byte, error) {
	switch v := src.(type) {
	case nil:
		return nil, nil
	case []byte:
		return v, nil
	case string:
		return []byte(v), nil
	}
	return nil, fmt.Errorf("store: cannot scan %T as jsonb", src)
}
