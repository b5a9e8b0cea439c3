package starter

import (
	"fmt"
	"strings"

	"github.com/scimsync/scimsync/sealed"
	"github.com/scimsync/scimsync/secretref"
)

// isReference reports whether a secret field's value names where the secret is (env:NAME,
// file:/path) rather than holding it.
func isReference(v string) bool {
	return strings.HasPrefix(v, "env:") || strings.HasPrefix(v, "file:")
}

// isLiteralSecret reports whether a secret field's value is the secret itself, not a
// reference or an already sealed value.
func isLiteralSecret(v string) bool {
	return v != "" && !isReference(v) && !sealed.IsSealed(v)
}

// sealLiterals replaces the literal secrets of the file's providers by their sealed form
// (under the installation secret, which the workers use to open them), so that no secret
// is stored in clear. A literal equal to what the database already holds sealed keeps that
// sealed value, so applying the same file again changes nothing. Without a usable
// installation secret, each literal is an error that says what to do.
func sealLiterals(file string, cfg *configFile, snap *snapshot, installationSecret string) []Diagnostic {
	var box *sealed.Box
	var why string
	if secret, err := secretref.Resolve(installationSecret); err != nil {
		why = fmt.Sprintf("the installation secret: %v", err)
	} else if box, err = sealed.New(secret); err != nil {
		why = "SCIMSYNC_INSTALLATION_SECRET (or --installation-secret) is not set"
	}
	var errs []Diagnostic
	for i := range cfg.Providers {
		ps := &cfg.Providers[i]
		cur := snap.providers[ps.p.Name]
		seal := func(field, v, stored string) string {
			if !isLiteralSecret(v) {
				return v
			}
			if box == nil {
				n := ps.nodes[field]
				if n == nil {
					n = ps.node
				}
				errs = append(errs, Diagnostic{File: file, Line: n.Line, Column: n.Column, Field: join(ps.path, field),
					Message: "a literal secret is stored sealed with a key derived from the workers' installation secret, and " + why +
						"; set it, or give a reference such as env:NAME or file:/path"})
				return v
			}
			if sealed.IsSealed(stored) {
				if old, err := box.Open(stored); err == nil && old == v {
					return stored
				}
			}
			return box.Seal(v)
		}
		p := &ps.p
		p.Token = seal("auth.token", p.Token, cur.Token)
		p.OAuthClientSecret = seal("auth.client_secret", p.OAuthClientSecret, cur.OAuthClientSecret)
		p.BasicPassword = seal("auth.password", p.BasicPassword, cur.BasicPassword)
		for k, v := range p.OAuthParams { // the errors are sorted by position afterwards
			if secretParam(k) {
				p.OAuthParams[k] = seal("auth.params."+k, v, cur.OAuthParams[k])
			}
		}
	}
	return errs
}
