package starter

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func runMain(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Main(context.Background(), &Deps{Getenv: func(string) string { return "" }}, args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// Each shell's script is cobra's, for the program starter, and asks starter itself.
func TestStarterCompletionPrintsEachShellsScript(t *testing.T) {
	for shell, want := range map[string][]string{
		"bash": {"# bash completion V2 for starter", "__start_starter()", "complete -o default -F __start_starter starter", "__complete"},
		"zsh":  {"#compdef starter", "compdef _starter starter", "__complete"},
		"fish": {"# fish completion for starter", "complete -c starter ", "__complete"},
	} {
		code, out, errOut := runMain(t, "completion", shell)
		if code != ExitOK || errOut != "" {
			t.Errorf("completion %s: exit %d, stderr %q", shell, code, errOut)
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("completion %s: the script lacks %q", shell, w)
			}
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"completion"}, "starter completion: missing arguments"},
		{[]string{"completion", "tcsh"}, `starter completion: unknown shell "tcsh": use bash, zsh or fish`},
		{[]string{"completion", "bash", "zsh"}, "starter completion: unexpected arguments: zsh"},
	} {
		if code, out, errOut := runMain(t, tc.args...); code != ExitUsage || out != "" || !strings.HasPrefix(errOut, tc.want+"\n") ||
			!strings.Contains(errOut, "usage: starter completion bash|zsh|fish") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 and %q", tc.args, code, out, errOut, tc.want)
		}
	}
}

// What the scripts ask (starter __complete WORDS...) is answered from the command tree:
// commands, each command's own flags and the global ones, and the words its arguments take.
func TestStarterCompletionAnswersFromTheCommands(t *testing.T) {
	for _, tc := range []struct {
		args      []string
		want, not []string
	}{
		{[]string{""}, []string{"apply\t", "full-sync\t", "mapping\t", "completion\t", "help\t"}, []string{"__complete"}},
		{[]string{"full-sync", "--"}, []string{"--provider\t", "--wait\t", "--allow-deletions\t", "--database-url\t", "--temporal-address\t"}, []string{"--prune"}},
		{[]string{"sync", ""}, []string{"user", "group"}, []string{"test"}},
		{[]string{"sync", "user", ""}, nil, []string{"user", "group"}},
		{[]string{"mapping", ""}, []string{"test"}, nil},
		{[]string{"mapping", "test", ""}, []string{"user", "group"}, nil},
		{[]string{"outbox", ""}, []string{"list", "retry", "drop"}, nil},
		{[]string{"completion", ""}, []string{"bash", "zsh", "fish"}, nil},
		{[]string{"apply", "-f", ""}, []string{"yaml", "yml"}, nil},
	} {
		code, out, _ := runMain(t, append([]string{"__complete"}, tc.args...)...)
		if code != ExitOK {
			t.Errorf("__complete %q: exit %d", tc.args, code)
		}
		lines := strings.Split(out, "\n")
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("__complete %q: %q lacks %q", tc.args, lines, w)
			}
		}
		for _, n := range tc.not {
			if strings.Contains(out, n) {
				t.Errorf("__complete %q: %q offers %q", tc.args, lines, n)
			}
		}
	}
}
