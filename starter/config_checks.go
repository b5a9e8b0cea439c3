package starter

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/scimsync/scimsync/mapping"
	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/scim"
	"github.com/scimsync/scimsync/store"
)

// The checks of a configuration file that its schema cannot express: each concerns several
// entries, another package's rules, or a value's meaning rather than its form. They leave
// alone the fields the schema already found wrong.

func (r *reader) check(cfg *configFile) {
	for _, m := range cfg.Mappings {
		r.checkExpression(m)
	}
	for i := range cfg.Providers {
		ps := &cfg.Providers[i]
		r.checkURL(ps, "base_url", ps.p.BaseURL)
		r.checkURL(ps, "auth.token_url", ps.p.OAuthTokenURL)
		r.checkDiscovery(ps)
		r.checkDeleteAfter(ps)
		r.warnLiteralSecrets(ps)
	}
	r.checkUnique(cfg)
}

// checkExpression compiles a mapping's Starlark body, and reports an error at the position
// in the file of the offending character, with the position inside the mapping too.
func (r *reader) checkExpression(m mappingSpec) {
	expr := m.nodes["expression"]
	if expr == nil || m.m.Name == "" || m.m.Kind == "" || r.bad[join(m.path, "expression")] {
		return
	}
	_, err := mapping.Compile(m.m.Name, object.Kind(m.m.Kind), m.m.Expression)
	if err == nil {
		return
	}
	field := join(m.path, "expression")
	var ce *mapping.CompileError
	if !errors.As(err, &ce) || ce.Line == 0 {
		r.errorf(expr, field, "%v", err)
		return
	}
	diag := r.at(expr, field, "line %d:%d of mapping %q: %s", ce.Line, ce.Column, ce.Mapping, ce.Msg)
	diag.Line, diag.Column = expressionPosition(r.lines, expr, ce.Line, ce.Column)
	r.errs = append(r.errs, diag)
}

// checkURL reports why a URL the schema let through (its scheme is http or https) is not
// usable, never echoing a password written in it.
func (r *reader) checkURL(ps *providerSpec, rel, s string) {
	n, field := ps.nodes[rel], join(ps.path, rel)
	if n == nil || s == "" || r.bad[field] {
		return
	}
	if msg := urlProblem(s); msg != "" {
		r.errorf(n, field, "invalid URL %q: %s", truncate(redactURL(s), 80), msg)
	}
}

// urlProblem returns why s is not a usable http(s) URL, or "".
func urlProblem(s string) string {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		var ue *url.Error
		if errors.As(err, &ue) {
			return ue.Err.Error()
		}
		return err.Error()
	case u.Scheme != "http" && u.Scheme != "https":
		return "the scheme must be http or https"
	case u.Host == "":
		return "a host is required"
	case u.User != nil:
		return "credentials do not belong in the URL; use auth"
	case u.RawQuery != "" || u.Fragment != "":
		return "a query or fragment is not allowed"
	}
	return ""
}

// redactURL hides a password written in a URL, so that an error never echoes it.
func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		return u.Redacted()
	}
	return s
}

// durationRule is what a duration setting may be. The schema checks its form; a form Go
// cannot read (a YAML number such as 5) is reported here in the same words.
type durationRule struct {
	expected string        // what a good value looks like, after "expected a duration such as"
	zero     bool          // "0" is a value of its own (reconcile_interval: only when asked)
	min      time.Duration // the smallest other value
	tooSmall string        // the error below min; %s is the value
}

var (
	// reconcile_interval: at least a minute, or 0 (read the target back only when asked).
	reconcileIntervalRule = durationRule{expected: "24h or 168h, or 0 to read the target back only when asked",
		zero: true, min: time.Minute, tooSmall: "must be 0 (only when asked) or at least 1m, got %s"}
	// full_sync_interval: at least a minute.
	fullSyncIntervalRule = durationRule{expected: "1h or 30m", min: time.Minute, tooSmall: "must be at least 1m, got %s"}
	// deprovision.delete_after: more than nothing.
	deleteAfterRule = durationRule{expected: "720h (30 days) or 168h", min: time.Nanosecond,
		tooSmall: "must be more than 0 (the grace period before a deactivated user is deleted), got %s"}
)

// duration reads a duration setting by its rule; false when it is absent or wrong.
func (r *reader) duration(n *yaml.Node, field string, v *string, rule durationRule) (time.Duration, bool) {
	if v == nil || r.bad[field] {
		return 0, false
	}
	iv, err := time.ParseDuration(*v)
	switch {
	case rule.zero && *v == "0":
		return 0, true
	case err != nil:
		r.errorf(n, field, "expected a duration such as %s, got %q", rule.expected, truncate(*v, 40))
	case iv < rule.min:
		r.errorf(n, field, rule.tooSmall, iv)
	default:
		return iv, true
	}
	return 0, false
}

// checkDeleteAfter: the grace period belongs to deactivate_then_delete, which needs one.
func (r *reader) checkDeleteAfter(ps *providerSpec) {
	p, field := &ps.p, join(ps.path, "deprovision.delete_after")
	action, after := ps.nodes["deprovision.action"], ps.nodes["deprovision.delete_after"]
	if r.bad[join(ps.path, "deprovision.action")] {
		return // an unknown action: no further errors follow from a guess
	}
	switch {
	case p.DeprovisionAction == store.DeprovisionDeactivateThenDelete && after == nil:
		r.errorf(action, field, "required with deprovision action deactivate_then_delete: how long a deactivated "+
			"user stays at the target before it is deleted, e.g. 720h (30 days)")
	case after != nil && p.DeprovisionAction != store.DeprovisionDeactivateThenDelete:
		r.errorf(after, field, "only used with deprovision action deactivate_then_delete (this provider's is %s)", p.DeprovisionAction)
	}
}

// checkDiscovery checks service_provider_config against discovery and the compatibility
// mode (whose table is scim's): where nothing is discovered (discovery off, or a mode that
// never discovers), the bulk limits cannot be read from the target and must be given.
func (r *reader) checkDiscovery(ps *providerSpec) {
	p, path := &ps.p, ps.path
	compat, err := scim.CompatFor(scim.Mode(p.CompatibilityMode))
	if err != nil {
		return // reported by the schema
	}
	var why string
	switch {
	case p.Discovery == store.DiscoveryOff:
		why = "with discovery off"
	case compat.NoDiscovery:
		why = fmt.Sprintf("with compatibility mode %s, which never discovers", p.CompatibilityMode)
	default:
		return
	}
	if b := p.ServiceConfig.Bulk; b != nil && b.Supported {
		bulk := ps.nodes["service_provider_config.bulk"]
		for _, f := range []struct{ key, what string }{
			{"max_operations", "the most operations the target takes in one Bulk request"},
			{"max_payload_size", "the most bytes it takes in one Bulk request"},
		} {
			if ps.nodes["service_provider_config.bulk."+f.key] == nil {
				r.errorf(bulk, join(path, "service_provider_config.bulk."+f.key), "required %s (nothing reads the target's limit): %s", why, f.what)
			}
		}
	}
	if p.Discovery == store.DiscoveryOff && !compat.NoDiscovery && p.ServiceConfig.IsZero() {
		r.warnf(ps.nodes["discovery"], join(path, "discovery"), "off without service_provider_config: the target is taken to support neither PATCH, Bulk nor filtering; say what it supports under service_provider_config")
	}
}

// warnLiteralSecrets warns of each secret written as itself rather than as a reference (it
// is accepted, and stored sealed, see sealLiterals), never echoing it. The form of
// references is the schema's.
func (r *reader) warnLiteralSecrets(ps *providerSpec) {
	p := &ps.p
	secrets := map[string]string{"auth.token": p.Token, "auth.client_secret": p.OAuthClientSecret, "auth.password": p.BasicPassword}
	for k, v := range p.OAuthParams {
		if secretParam(k) {
			secrets["auth.params."+k] = v
		}
	}
	for rel, v := range secrets {
		if n := ps.nodes[rel]; n != nil && isLiteralSecret(v) && !r.bad[join(ps.path, rel)] {
			r.warnf(n, join(ps.path, rel), "a literal secret is stored sealed under the installation secret; a reference such as env:NAME or file:/path keeps it out of the database")
		}
	}
}

// secretParam tells which extra token-request parameters hold secrets (a grant_type does
// not; a password does).
func secretParam(name string) bool {
	name = strings.ToLower(name)
	for _, s := range []string{"password", "secret", "token", "key", "assertion"} {
		if strings.Contains(name, s) {
			return true
		}
	}
	return false
}

// checkUnique refuses two objects of one kind with the same name (bindings: the same
// application and target).
func (r *reader) checkUnique(cfg *configFile) {
	type named struct {
		name string
		node *yaml.Node
		path string
	}
	check := func(what string, items []named) {
		first := map[string]int{}
		for _, it := range items {
			if it.name == "" {
				continue
			}
			if line, dup := first[it.name]; dup {
				r.errorf(it.node, it.path, "%s %q is defined twice (first on line %d)", what, it.name, line)
				continue
			}
			first[it.name] = it.node.Line
		}
	}
	var items []named
	for _, a := range cfg.Applications {
		items = append(items, named{a.app.Name, a.node, a.path})
	}
	check("application", items)
	items = nil
	for _, m := range cfg.Mappings {
		items = append(items, named{m.m.Name, m.node, m.path})
	}
	check("mapping", items)
	items = nil
	for _, p := range cfg.Providers {
		items = append(items, named{p.p.Name, p.node, p.path})
	}
	check("provider", items)
	first := map[string]int{}
	for _, b := range cfg.Bindings {
		if b.application.name == "" || (b.group.name == "") == (b.user.name == "") {
			continue
		}
		if line, dup := first[b.key()]; dup {
			r.errorf(b.node, b.path, "binding %s is defined twice (first on line %d)", b.describe(), line)
			continue
		}
		first[b.key()] = b.node.Line
	}
}
