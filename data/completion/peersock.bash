# bash completion for peersock (installed as
# share/bash-completion/completions/peersock; or source this file).
# Completes subcommands, options, option values that have a fixed set of
# choices, files for --config/--code-file, and `-` (type the code at the
# prompt, with completion there) where a code goes.

_peersock() {
    local cur prev
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD-1]}
    local subcommands="connect listen stdio-a stdio-b listen-unix connect-unix listen-udp connect-udp peers help"
    local options="--relay --stun --turn --turn-user --turn-password --force-relay --no-relay --no-original --congestion --reconnect-timeout --bind --udp-idle --udp-max-flows --send-only --recv-only --config --code-file
        --code-words --join --remember --label --peer --serve --print-config --json --status --no-status -v --verbose --debug= -q --quiet -h --help --version"
    local layers="all rendezvous ice quic auth forward session"

    # --debug=LIST: bash splits at '=' (COMP_WORDBREAKS), so the '=' is a
    # word of its own and the list the word after it; right after the '='
    # the current word is the '=' itself (and what readline completes is the
    # empty text behind it).
    local list= in_debug=0 pre=
    if [[ $cur == = && $prev == --debug ]]; then
        in_debug=1
    elif [[ $prev == = && ${COMP_WORDS[COMP_CWORD-2]} == --debug ]]; then
        in_debug=1 list=$cur
    elif [[ $cur == --debug=* ]]; then
        in_debug=1 list=${cur#--debug=} pre=--debug=  # '=' not a word break here: the word is all of it
    fi
    if ((in_debug)); then
        local head=
        [[ $list == *,* ]] && head=${list%,*},
        local IFS=$' \t\n'
        COMPREPLY=($(compgen -P "$pre$head" -W "$layers" -- "${list##*,}"))
        compopt -o nospace 2>/dev/null
        return
    fi

    case $prev in
        --config|--code-file)
            COMPREPLY=($(compgen -f -- "$cur"))
            return ;;
        --relay)
            COMPREPLY=($(compgen -W "ws:// wss://" -- "$cur"))
            compopt -o nospace 2>/dev/null
            return ;;
        --congestion)
            COMPREPLY=($(compgen -W "bbr cubic" -- "$cur"))
            return ;;
        --reconnect-timeout)
            COMPREPLY=($(compgen -W "0 30 60 300" -- "$cur"))
            return ;;
        --code-words)
            COMPREPLY=($(compgen -W "2 3 4 5 6 7 8" -- "$cur"))
            return ;;
        --stun|--turn|--turn-user|--turn-password|--bind|--remember|--label|--udp-idle|--udp-max-flows)
            return ;;
        --peer)
            local dir=${XDG_DATA_HOME:-$HOME/.local/share}/peersock/peers names=
            [[ -d $dir ]] && names=$(cd "$dir" && ls -1 2>/dev/null)
            COMPREPLY=($(compgen -W "$names" -- "$cur"))
            return ;;
    esac

    # The subcommand and how many positional words follow it.
    local i word sub= npos=0
    for ((i = 1; i < COMP_CWORD; i++)); do
        word=${COMP_WORDS[i]}
        case $word in
            --relay|--stun|--turn|--turn-user|--turn-password|--bind|--config|--code-file|--code-words|--remember|--label|--peer|--udp-idle|--udp-max-flows)
                ((i++)) ;;
            -*) ;;
            *)
                if [[ -z $sub ]]; then sub=$word; else ((npos++)); fi ;;
        esac
    done

    if [[ $cur == -?* ]]; then
        COMPREPLY=($(compgen -W "$options" -- "$cur"))
        [[ ${COMPREPLY[0]} == *= ]] && compopt -o nospace 2>/dev/null
        return
    fi
    case $sub in
        "")
            COMPREPLY=($(compgen -W "$subcommands" -- "$cur")) ;;
        help)
            ((npos == 0)) && COMPREPLY=($(compgen -W "connect listen stdio-a stdio-b listen-unix connect-unix listen-udp connect-udp" -- "$cur")) ;;
        connect|connect-udp)
            if ((npos == 0)); then
                COMPREPLY=($(compgen -W "localhost: 127.0.0.1:" -- "$cur"))
                compopt -o nospace 2>/dev/null
            elif ((npos == 1)); then
                COMPREPLY=($(compgen -W "-" -- "$cur"))
            fi ;;
        listen|listen-udp)
            ((npos == 1)) && COMPREPLY=($(compgen -W "-" -- "$cur")) ;;
        stdio-a|stdio-b)
            ((npos == 0)) && COMPREPLY=($(compgen -W "-" -- "$cur")) ;;
        listen-unix|connect-unix)
            if ((npos == 0)); then
                COMPREPLY=($(compgen -f -- "$cur"))
            elif ((npos == 1)); then
                COMPREPLY=($(compgen -W "-" -- "$cur"))
            fi ;;
        peers)
            if ((npos == 0)); then
                COMPREPLY=($(compgen -W "list forget" -- "$cur"))
            elif ((npos == 1)); then
                # The names of the pairings (pairing files; dot files are not pairings).
                local dir=${XDG_DATA_HOME:-$HOME/.local/share}/peersock/peers names=
                [[ -d $dir ]] && names=$(cd "$dir" && ls -1 2>/dev/null)
                COMPREPLY=($(compgen -W "$names" -- "$cur"))
            fi ;;
    esac
}
complete -F _peersock peersock
