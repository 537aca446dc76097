# bash completion for clustermgr, state-inspect and clustermgrd (installed into
# /usr/share/bash-completion/completions/).

_clustermgr() {
  local cur prev words cword
  _init_completion || return
  local global_flags="-u --url -j --json --timeout --server-key --key -h --help --version"
  case $prev in
    -u | --url | --timeout | -e | --extra-vars | --serial) return ;;
    -g | --group | --host-group)
      COMPREPLY=($(compgen -W "service-master service-worker" -- "$cur"))
      return ;;
    --server-key | --key | --out)
      _filedir
      return ;;
  esac
  # The command words typed so far (flags and their values skipped).
  local i cmd=() skip=0
  for ((i = 1; i < cword; i++)); do
    if ((skip)); then skip=0; continue; fi
    case ${words[i]} in
      -u | --url | --timeout | -e | --extra-vars | -g | --group | --host-group | --server-key | \
        --key | --out | --serial) skip=1 ;;
      -*) ;;
      *) cmd+=("${words[i]}") ;;
    esac
  done
  if [[ $cur == -* ]]; then
    local flags=$global_flags
    case "${cmd[0]} ${cmd[1]}" in
      "node commission"* | "nodes commission"* | "n c"* | "a c"*)
        flags+=" -g --group --host-group -e --extra-vars -w --wait" ;;
      "nodes update"* | "a u"*)
        flags+=" -g --group --host-group -e --extra-vars --serial -w --wait" ;;
      "node update"* | "n u"*)
        flags+=" -g --group --host-group -e --extra-vars -w --wait" ;;
      "nodes upgrade"*) flags+=" -e --extra-vars --serial -w --wait" ;;
      "node upgrade"*) flags+=" -e --extra-vars -w --wait" ;;
      "node decommission"* | "nodes decommission"* | "n d"* | "a d"*)
        flags+=" -e --extra-vars -w --wait" ;;
      "discover"* | "d "*) flags+=" -e --extra-vars -w --wait" ;;
      "global set"* | "g s"*) flags+=" -e --extra-vars" ;;
      "job get"* | "j g"*) flags+=" -f --follow" ;;
      "keygen"*) flags+=" --out" ;;
    esac
    COMPREPLY=($(compgen -W "$flags" -- "$cur"))
    return
  fi
  case ${#cmd[@]} in
    0)
      COMPREPLY=($(compgen -W "node nodes discover global job jobs config members token status
        keygen help" -- "$cur")) ;;
    1)
      case ${cmd[0]} in
        node | n | nodes | a)
          COMPREPLY=($(compgen -W "get commission decommission update upgrade" -- "$cur")) ;;
        global | g | config | c) COMPREPLY=($(compgen -W "get set" -- "$cur")) ;;
        job | j) COMPREPLY=($(compgen -W "get cancel" -- "$cur")) ;;
        jobs) COMPREPLY=($(compgen -W "list" -- "$cur")) ;;
        help) COMPREPLY=($(compgen -W "node nodes discover global job jobs config members token
          status keygen" -- "$cur")) ;;
      esac ;;
    2)
      case "${cmd[0]} ${cmd[1]}" in
        "job get" | "j g") COMPREPLY=($(compgen -W "active last" -- "$cur")) ;;
        "config set" | "c s") _filedir ;;
      esac ;;
  esac
} && complete -F _clustermgr clustermgr

_state_inspect() {
  local cur prev words cword
  _init_completion || return
  case $prev in
    --url) return ;;
    --server-key | --key) _filedir; return ;;
    --section)
      COMPREPLY=($(compgen -W "meta applied delta_log globals node_vars host_groups
        host_group_context inventory jobs job_logs config token_epoch" -- "$cur"))
      return ;;
  esac
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "--url --section --json --server-key --key --help --version" -- "$cur"))
  elif ((cword == 1)); then
    COMPREPLY=($(compgen -W "dump stats verify diff" -- "$cur"))
  else
    _filedir -d
  fi
} && complete -F _state_inspect state-inspect

_clustermgrd() {
  local cur prev words cword
  _init_completion || return
  case $prev in
    --config | --curve-key | --curve-clients | --curve-peers | --ansible-private-key)
      _filedir; return ;;
    --data-dir | --playbook-dir) _filedir -d; return ;;
    --log-level) COMPREPLY=($(compgen -W "debug info warn error" -- "$cur")); return ;;
    --log-format) COMPREPLY=($(compgen -W "auto text json" -- "$cur")); return ;;
  esac
  if [[ $cur == -* ]]; then
    # The options as clustermgrd itself lists them.
    COMPREPLY=($(compgen -W "$(clustermgrd --help 2>/dev/null |
      grep -o -- '--[a-z][a-z-]*' | sort -u)" -- "$cur"))
  fi
} && complete -F _clustermgrd clustermgrd
