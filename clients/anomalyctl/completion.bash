# bash completion for anomalyctl                          -*- shell-script -*-
#
# Installed as share/bash-completion/completions/anomalyctl, which the
# bash-completion package loads the first time anomalyctl is completed; or
# `source` it. Completes commands, the options of the command at hand and
# the global ones (which go before or after the command), the fixed values
# of --device, --order, --format and --method, and paths. Needs nothing
# from bash-completion. tests/clients/anomalyctl/completion_test.sh keeps it
# equal to what `anomalyctl COMMAND --help` lists.

_anomalyctl() {
  local cur=${COMP_WORDS[COMP_CWORD]-} prev=${COMP_WORDS[COMP_CWORD-1]-}
  # "--format=cs": bash splits at "=" (COMP_WORDBREAKS).
  if [[ $cur == "=" ]]; then
    cur=""
  elif [[ $prev == "=" ]]; then
    prev=${COMP_WORDS[COMP_CWORD-2]-}
  fi

  local globals="--endpoint --control --alerts --timeout-ms --server-key --client-key --help"
  local commands="train score eval sample encode status query retrain models calibrate reload cancel tail keygen"
  # Options followed by a value, whatever the command.
  local valued=" --endpoint --control --alerts --timeout-ms --server-key --client-key \
--data --out --config --seed --device --model --stream --batch -n --since --until \
--min-score --limit --cursor --order --format --csv --to --method --contamination --risk \
--value --name "

  # The command (and "rollback" under "models"), skipping option values.
  local cmd="" sub="" i word
  for ((i = 1; i < COMP_CWORD; i++)); do
    word=${COMP_WORDS[i]}
    if [[ $word == -* ]]; then
      [[ $valued == *" $word "* && ${COMP_WORDS[i+1]-} != "=" ]] && ((i++))
      [[ ${COMP_WORDS[i+1]-} == "=" ]] && ((i += 2))
      continue
    fi
    if [[ -z $cmd ]]; then
      cmd=$word
    elif [[ $cmd == models && -z $sub && $word == rollback ]]; then
      sub=$word
    fi
  done

  case $prev in
    --device) mapfile -t COMPREPLY < <(compgen -W "auto cpu cuda cuda:0" -- "$cur"); return ;;
    --order) mapfile -t COMPREPLY < <(compgen -W "time score oldest" -- "$cur"); return ;;
    --format) mapfile -t COMPREPLY < <(compgen -W "table json csv" -- "$cur"); return ;;
    --method) mapfile -t COMPREPLY < <(compgen -W "pot quantile fixed" -- "$cur"); return ;;
    --model)
      compopt -o filenames 2>/dev/null
      mapfile -t COMPREPLY < <(compgen -d -- "$cur")
      return ;;
    --out)
      compopt -o filenames 2>/dev/null
      if [[ $cmd == train || $cmd == keygen ]]; then
        mapfile -t COMPREPLY < <(compgen -d -- "$cur")
      else
        mapfile -t COMPREPLY < <(compgen -f -- "$cur")
      fi
      return ;;
    --data|--csv|--config|--server-key|--client-key)
      compopt -o filenames 2>/dev/null
      mapfile -t COMPREPLY < <(compgen -f -- "$cur")
      return ;;
  esac
  [[ $valued == *" $prev "* ]] && return  # a value we cannot guess

  local opts
  case $cmd in
    "") opts="$globals" ;;
    train) opts="--data --out --config --seed --device --quiet -q" ;;
    score) opts="--model --data --out --device --stream --batch --contributions" ;;
    eval) opts="--model --data --device --json" ;;
    sample) opts="--model -n --seed --out --draws" ;;
    encode) opts="--model --data --out --device --logvar" ;;
    status) opts="--json" ;;
    query) opts="--since --until --event-time --stream --min-score --limit --cursor --order --format --all" ;;
    retrain) opts="--stream --csv --from-reservoir --wait" ;;
    models)
      if [[ -n $sub ]]; then opts="--to --stream --json"; else opts="--stream --json"; fi ;;
    calibrate) opts="--stream --method --contamination --risk --value --force" ;;
    reload) opts="" ;;
    cancel) opts="--stream --wait" ;;
    tail) opts="--stream -n --since" ;;
    keygen) opts="--out --name" ;;
    *) return ;;
  esac
  [[ -n $cmd ]] && opts="$opts $globals"
  if [[ $cur == -* ]]; then
    mapfile -t COMPREPLY < <(compgen -W "$opts" -- "$cur")
  elif [[ -z $cmd ]]; then
    mapfile -t COMPREPLY < <(compgen -W "$commands" -- "$cur")
  elif [[ $cmd == models && -z $sub ]]; then
    mapfile -t COMPREPLY < <(compgen -W "rollback" -- "$cur")
  fi
}
complete -F _anomalyctl anomalyctl
