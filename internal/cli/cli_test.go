package cli

import (
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// tree is a root with a global string and bool flag and a command with its own flags, as
// the starter has them.
func tree() *cobra.Command {
	root := &cobra.Command{Use: "root", Run: func(*cobra.Command, []string) {}}
	root.PersistentFlags().String("database-url", "", "")
	root.PersistentFlags().Bool("temporal-tls", false, "")
	sub := &cobra.Command{Use: "sync", Run: func(*cobra.Command, []string) {}}
	sub.Flags().StringP("f", "f", "", "")
	sub.Flags().String("provider", "", "")
	sub.Flags().Int("deletions", 0, "")
	sub.Flags().Bool("json", false, "")
	root.AddCommand(sub)
	return root
}

func TestGoFlagArgsWritesLongFlagsWithTwoDashes(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"-database-url x sync -provider p user ada", "--database-url x sync --provider p user ada"},
		{"--database-url=x -temporal-tls sync -json=true", "--database-url=x --temporal-tls sync --json=true"},
		// Values stay as they are, even with a dash; a bool flag takes none.
		{"sync -deletions -5 -provider -odd -json -x", "sync --deletions -5 --provider -odd --json -x"},
		{"-temporal-tls -json", "--temporal-tls --json"},
		// One letter: a shorthand, with one dash or two.
		{"sync -f c.yaml --f=d.yaml -f=e.yaml -h --h", "sync -f c.yaml -f=d.yaml -f=e.yaml -h -h"},
		// After --, and a lone dash, nothing is rewritten.
		{"sync - -- -provider p", "sync - -- -provider p"},
		{"---x sync", "---x sync"},
		// An unknown command's arguments are read with the root's flags.
		{"frob -database-url -x", "frob --database-url -x"},
		// Shell completion requests are cobra's.
		{cobra.ShellCompRequestCmd + " sync -prov", cobra.ShellCompRequestCmd + " sync -prov"},
	} {
		if got := strings.Join(GoFlagArgs(tree(), strings.Fields(tc.in)), " "); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.in, got, tc.want)
		}
	}
}

// The rewritten arguments parse to what the flag package parses from the originals.
func TestGoFlagArgsParseAsTheFlagPackage(t *testing.T) {
	args := strings.Fields("-provider p -deletions -5 user -json --f=c.yaml ada")
	gofs := flag.NewFlagSet("sync", flag.ContinueOnError)
	provider, deletions := gofs.String("provider", "", ""), gofs.Int("deletions", 0, "")
	asJSON, file := gofs.Bool("json", false, ""), gofs.String("f", "", "")
	var pos []string
	for rest := args; ; {
		if err := gofs.Parse(rest); err != nil {
			t.Fatal(err)
		}
		if rest = gofs.Args(); len(rest) == 0 {
			break
		}
		pos, rest = append(pos, rest[0]), rest[1:]
	}

	root := tree()
	var got []string
	root.Commands()[0].Run = func(_ *cobra.Command, a []string) { got = a }
	root.SetArgs(GoFlagArgs(root, append([]string{"sync"}, args...)))
	cmd, err := root.ExecuteC()
	if err != nil {
		t.Fatal(err)
	}
	p, _ := cmd.Flags().GetString("provider")
	d, _ := cmd.Flags().GetInt("deletions")
	j, _ := cmd.Flags().GetBool("json")
	f, _ := cmd.Flags().GetString("f")
	if p != *provider || d != *deletions || j != *asJSON || f != *file || !slices.Equal(got, pos) {
		t.Errorf("cobra: %q %d %v %q %q; flag package: %q %d %v %q %q", p, d, j, f, got, *provider, *deletions, *asJSON, *file, pos)
	}
}

func TestFlagErrorWordsAsTheFlagPackage(t *testing.T) {
	for _, tc := range []struct{ args, want string }{
		{"sync --nope", "flag provided but not defined: -nope"},
		{"sync -nope", "flag provided but not defined: -nope"},
		{"sync -x", "flag provided but not defined: -x"},
		{"sync --provider", "flag needs an argument: -provider"},
		{"sync -f", "flag needs an argument: -f"},
		{"sync --json=maybe", `invalid boolean value "maybe" for -json: parse error`},
		{"sync --deletions many", `invalid value "many" for flag -deletions: parse error`},
		{"-temporal-tls=maybe sync", `invalid boolean value "maybe" for -temporal-tls: parse error`},
	} {
		root := tree()
		root.SetFlagErrorFunc(FlagError)
		root.SetOut(io.Discard)
		root.SetErr(io.Discard)
		root.SetArgs(GoFlagArgs(root, strings.Fields(tc.args)))
		if _, err := root.ExecuteC(); err == nil || err.Error() != tc.want {
			t.Errorf("%s: error %v, want %q", tc.args, err, tc.want)
		}
	}
	// The standard flag package's own words, for the same mistakes.
	gofs := flag.NewFlagSet("sync", flag.ContinueOnError)
	gofs.SetOutput(io.Discard)
	gofs.Int("deletions", 0, "")
	gofs.Duration("timeout", time.Second, "")
	for args, want := range map[string]string{
		"--nope":          "flag provided but not defined: -nope",
		"--deletions":     "flag needs an argument: -deletions",
		"--deletions=any": `invalid value "any" for flag -deletions: parse error`,
	} {
		if err := gofs.Parse(strings.Fields(args)); err == nil || err.Error() != want {
			t.Errorf("flag package, %s: %v, want %q", args, err, want)
		}
	}
}
