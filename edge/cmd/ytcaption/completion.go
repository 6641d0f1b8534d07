package main

import "fmt"

// Completion scripts: commands, subcommands and flags. Kept by hand, beside
// the usage text they mirror; a test checks every flag appears.
const bashCompletion = `# ytcaption bash completion: source <(ytcaption completion bash)
_ytcaption() {
  local cur=${COMP_WORDS[COMP_CWORD]} cmd=${COMP_WORDS[1]} sub=${COMP_WORDS[2]}
  local words
  if [ "$COMP_CWORD" -eq 1 ]; then
    words="transcribe jobs batches translate speakers share login version completion help"
  else
    case "$cmd" in
      transcribe) words="--format --karaoke --language --source --task --prompt --webhook-url -o --no-wait --follow --cancel-on-interrupt --idempotency-key --json --batch --max-items --order --after --before --translate-to --vocabulary --guards --speakers --min-speakers --max-speakers" ;;
      translate) words="--format -o --no-wait --json" ;;
      speakers)
        if [ "$COMP_CWORD" -eq 2 ]; then words="rename"
        else words="--clear --json"; fi ;;
      share)
        if [ "$COMP_CWORD" -eq 2 ]; then words="create list revoke"
        else case "$sub" in
          create) words="--revision --expires --json" ;;
          *) words="--json" ;;
        esac; fi ;;
      jobs)
        if [ "$COMP_CWORD" -eq 2 ]; then words="list get cancel transcript"
        else case "$sub" in
          list) words="--limit --json" ;;
          transcript) words="--format --karaoke --revision -o --json" ;;
          *) words="--json" ;;
        esac; fi ;;
      batches)
        if [ "$COMP_CWORD" -eq 2 ]; then words="list get cancel"
        else case "$sub" in
          list) words="--limit --json" ;;
          *) words="--json" ;;
        esac; fi ;;
      login) words="--url --api-key --json" ;;
      version) words="--json" ;;
      completion) words="bash zsh fish" ;;
    esac
  fi
  case "${COMP_WORDS[COMP_CWORD-1]}" in
    --format) words="srt vtt ass ttml sbv txt json tsv" ;;
    --source) words="auto captions asr" ;;
    --task) words="transcribe translate" ;;
    --order) words="playlist newest" ;;
    --guards) words="silence,repetition silence repetition none" ;;
  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o default -F _ytcaption ytcaption
`

const zshCompletion = `#compdef ytcaption
# ytcaption zsh completion: source <(ytcaption completion zsh)
autoload -U bashcompinit && bashcompinit
` + bashCompletion

const fishCompletion = `# ytcaption fish completion: ytcaption completion fish | source
complete -c ytcaption -f
complete -c ytcaption -n __fish_use_subcommand -a 'transcribe jobs batches translate speakers share login version completion help'
complete -c ytcaption -n '__fish_seen_subcommand_from jobs' -a 'list get cancel transcript'
complete -c ytcaption -n '__fish_seen_subcommand_from batches' -a 'list get cancel'
complete -c ytcaption -n '__fish_seen_subcommand_from completion' -a 'bash zsh fish'
complete -c ytcaption -n '__fish_seen_subcommand_from speakers' -a 'rename'
complete -c ytcaption -n '__fish_seen_subcommand_from speakers' -l clear
complete -c ytcaption -n '__fish_seen_subcommand_from speakers' -l json
complete -c ytcaption -n '__fish_seen_subcommand_from share' -a 'create list revoke'
complete -c ytcaption -n '__fish_seen_subcommand_from share; and __fish_seen_subcommand_from create' -l revision -x
complete -c ytcaption -n '__fish_seen_subcommand_from share; and __fish_seen_subcommand_from create' -l expires -x
complete -c ytcaption -n '__fish_seen_subcommand_from transcribe' -l speakers
complete -c ytcaption -n '__fish_seen_subcommand_from transcribe' -l min-speakers -x
complete -c ytcaption -n '__fish_seen_subcommand_from transcribe' -l max-speakers -x
complete -c ytcaption -n '__fish_seen_subcommand_from transcribe' -l format -xa 'srt vtt ass ttml sbv txt json tsv'
complete -c ytcaption -n '__fish_seen_subcommand_from transcribe' -l karaoke
complete -c ytcaption -n '__fish_seen_subcommand_from transcribe' -l language -x
complete -c ytcaption -n '__fish_seen_subcommand_from transcribe' -l source -xa 'auto captions asr'
complete -c ytcaption -n '__fish_seen_subcommand_from transcribe' -l task -xa 'transcribe translate'
complete -c ytcaption -n '__fish_seen_subcommand_from transcribe' -l prompt -x
complete -c ytcaption -n '__fish_seen_subcommand_from transcribe' -l webhook-url -x
complete -c ytcaption -n '__fish_seen_subcommand_from transcribe' -s o -r
complete -c ytcaption -n '__fish_seen_subcommand_from transcribe' -l no-wait
complete -c ytcaption -n '__fish_seen_subcommand_from transcribe' -l follow
complete -c ytcaption -n '__fish_seen_subcommand_from transcribe' -l cancel-on-interrupt
complete -c ytcaption -n '__fish_seen_subcommand_from transcribe' -l idempotency-key -x
complete -c ytcaption -n '__fish_seen_subcommand_from transcribe' -l batch
complete -c ytcaption -n '__fish_seen_subcommand_from transcribe' -l max-items -x
complete -c ytcaption -n '__fish_seen_subcommand_from transcribe' -l order -xa 'playlist newest'
complete -c ytcaption -n '__fish_seen_subcommand_from transcribe' -l after -x
complete -c ytcaption -n '__fish_seen_subcommand_from transcribe' -l before -x
complete -c ytcaption -n '__fish_seen_subcommand_from transcribe' -l translate-to -x
complete -c ytcaption -n '__fish_seen_subcommand_from transcribe' -l vocabulary -x
complete -c ytcaption -n '__fish_seen_subcommand_from transcribe' -l guards -x -a 'silence,repetition silence repetition none'
complete -c ytcaption -n '__fish_seen_subcommand_from translate' -l format -xa 'srt vtt ass ttml sbv txt json tsv'
complete -c ytcaption -n '__fish_seen_subcommand_from translate' -s o -r
complete -c ytcaption -n '__fish_seen_subcommand_from translate' -l no-wait
complete -c ytcaption -n '__fish_seen_subcommand_from jobs batches; and __fish_seen_subcommand_from list' -l limit -x
complete -c ytcaption -n '__fish_seen_subcommand_from transcript' -l revision -x
complete -c ytcaption -n '__fish_seen_subcommand_from login' -l url -x
complete -c ytcaption -n '__fish_seen_subcommand_from login' -l api-key -x
complete -c ytcaption -l json
`

func completion(args []string, e env) error {
	c := newCommand("completion", "completion bash|zsh|fish",
		"Prints a shell completion script: source <(ytcaption completion bash), or zsh;\nytcaption completion fish | source.", []string{"a shell (bash, zsh or fish)"}, e)
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	scripts := map[string]string{"bash": bashCompletion, "zsh": zshCompletion, "fish": fishCompletion}
	s, ok := scripts[pos[0]]
	if !ok {
		return unknownWord("shell", pos[0], []string{"bash", "zsh", "fish"}, "ytcaption completion --help")
	}
	_, err = fmt.Fprint(e.stdout, s)
	return err
}
