package starter

import (
	"context"
	"fmt"
	"io"
)

const completionHelp = `
Prints the script that completes starter's commands, flags and arguments in the shell, as
cobra generates it. Install it once:

  bash   starter completion bash >/etc/bash_completion.d/starter   (needs bash-completion)
         or: source <(starter completion bash)   in ~/.bashrc
  zsh    starter completion zsh >"${fpath[1]}/_starter"             (compinit on)
  fish   starter completion fish >~/.config/fish/completions/starter.fish

The script asks starter itself for the completions, so it stays current as starter changes.
`

// completionShells are the shells completion writes scripts for.
var completionShells = []string{"bash", "zsh", "fish"}

// completionCommand declares `starter completion`.
func completionCommand(cl *cmdLine) runFunc {
	cl.describe("completion bash|zsh|fish", completionHelp, 1, 1)
	cl.completeArgs(completionShells)
	return func(_ context.Context, _ *Deps, pos []string, stdout, stderr io.Writer) int {
		return Completion(cl, pos[0], stdout, stderr)
	}
}

// Completion is `starter completion`: the shell's completion script on stdout.
func Completion(cl *cmdLine, shell string, stdout, stderr io.Writer) int {
	root := cl.cmd.Root()
	var err error
	switch shell {
	case "bash":
		err = root.GenBashCompletionV2(stdout, true)
	case "zsh":
		err = root.GenZshCompletion(stdout)
	case "fish":
		err = root.GenFishCompletion(stdout, true)
	default:
		return cl.usageError(stderr, fmt.Sprintf("unknown shell %q: use bash, zsh or fish", shell))
	}
	return exitCode(stderr, "completion", err)
}
