// Package cli holds what the starter and the worker share on their command lines, which
// cobra parses: flags spelled as the standard flag package reads them, and its words in
// flag errors.
//
// Both binaries were written on the standard flag package, so scripts, manifests and our
// own messages ("DATABASE_URL (or -database-url) is required") spell long flags with one
// dash as well as two. pflag reads -name as the shorthands n, a, m, e: GoFlagArgs rewrites
// such arguments before cobra sees them, and FlagError words pflag's errors the way the
// flag package did, so that neither spelling nor error text changed with the move.
package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// GoFlagArgs returns args (without the program name) for cobra under root, with every
// long flag written with two dashes: -name and -name=value become --name and
// --name=value. A one-letter flag is a shorthand with one dash or two (--f is -f). Values
// of flags that take one are left as they are, even when they start with a dash, and so is
// everything after "--". Subcommands are followed by name, for their own flags.
//
// The arguments of a shell completion request are left to cobra: completion offers the
// two-dash spelling. The result is never nil, which cobra's SetArgs would take for
// os.Args.
func GoFlagArgs(root *cobra.Command, args []string) []string {
	if len(args) > 0 && (args[0] == cobra.ShellCompRequestCmd || args[0] == cobra.ShellCompNoDescRequestCmd) {
		return args
	}
	out := make([]string, 0, len(args))
	cmd, descend := root, true
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...)
		}
		if len(a) < 2 || a[0] != '-' || strings.HasPrefix(a, "---") {
			if sub := subcommand(cmd, a); descend && sub != nil {
				cmd = sub
			} else {
				descend = false
			}
			out = append(out, a)
			continue
		}
		spec := strings.TrimLeft(a, "-")
		name, _, hasValue := strings.Cut(spec, "=")
		if len(name) == 1 {
			a = "-" + spec
		} else {
			a = "--" + spec
		}
		out = append(out, a)
		if f := lookup(cmd, name); f != nil && f.NoOptDefVal == "" && !hasValue && i+1 < len(args) {
			i++
			out = append(out, args[i])
		}
	}
	return out
}

// subcommand is cmd's subcommand called name, or nil.
func subcommand(cmd *cobra.Command, name string) *cobra.Command {
	for _, c := range cmd.Commands() {
		if c.Name() == name || c.HasAlias(name) {
			return c
		}
	}
	return nil
}

// lookup finds the flag name (a long name, else a shorthand) of cmd or its parents.
func lookup(cmd *cobra.Command, name string) *pflag.Flag {
	for c := cmd; c != nil; c = c.Parent() {
		for _, fs := range []*pflag.FlagSet{c.Flags(), c.PersistentFlags()} {
			if f := fs.Lookup(name); f != nil {
				return f
			}
			if len(name) == 1 {
				if f := fs.ShorthandLookup(name); f != nil {
					return f
				}
			}
		}
	}
	return nil
}

// FlagError words a pflag parse error as the flag package did: "flag provided but not
// defined: -nope", "flag needs an argument: -f", `invalid value "x" for flag -errors: parse
// error`. Other errors are returned as they are. It is a cobra FlagErrorFunc.
func FlagError(_ *cobra.Command, err error) error {
	var notExist *pflag.NotExistError
	var noValue *pflag.ValueRequiredError
	var invalid *pflag.InvalidValueError
	switch {
	case errors.As(err, &notExist):
		name := notExist.GetSpecifiedName()
		if s := notExist.GetSpecifiedShortnames(); s != "" {
			name = s
		}
		return fmt.Errorf("flag provided but not defined: -%s", name)
	case errors.As(err, &noValue):
		return fmt.Errorf("flag needs an argument: -%s", noValue.GetFlag().Name)
	case errors.As(err, &invalid):
		if invalid.GetFlag().Value.Type() == "bool" {
			return fmt.Errorf("invalid boolean value %q for -%s: parse error", invalid.GetValue(), invalid.GetFlag().Name)
		}
		return fmt.Errorf("invalid value %q for flag -%s: parse error", invalid.GetValue(), invalid.GetFlag().Name)
	}
	return err
}
