//go:build tools

// Package tools pins the project's dependencies before every package uses them.
package tools

import (
	_ "github.com/google/uuid"
	_ "github.com/jmoiron/sqlx"
	_ "github.com/lib/pq"
	_ "github.com/ory/dockertest/v3"
	_ "github.com/pressly/goose/v3"
	_ "github.com/xeipuuv/gojsonschema"
	_ "go.starlark.net/starlark"
	_ "go.temporal.io/sdk/client"
	_ "golang.org/x/oauth2"
	_ "gopkg.in/yaml.v3"
)
