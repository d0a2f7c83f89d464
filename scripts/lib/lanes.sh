# Sourced by scripts/test.sh: runs independent parts of the suite side by
# side. Most of the host and browser tests wait on real time (paced bodies,
# playback), so two or three of them share this machine's cores well.

# run_lanes FUNCTION...: runs each function in a background subshell (with
# `set -e`), its output in target/lanes/<function>.log. As each one ends,
# prints its log whole, its exit status and how long it took, so the logs of
# parallel lanes never interleave. Returns non-zero when any lane failed,
# after all of them have ended.
run_lanes() {
  local dir=target/lanes
  mkdir -p "$dir"
  local -A lane_of=() started=()
  local lane pid
  for lane in "$@"; do
    (set -e; "$lane") >"$dir/$lane.log" 2>&1 &
    lane_of[$!]=$lane
    started[$lane]=$SECONDS
  done
  local failed=() rc
  while ((${#lane_of[@]})); do
    rc=0
    wait -n -p pid "${!lane_of[@]}" || rc=$?
    lane=${lane_of[$pid]}
    unset "lane_of[$pid]"
    printf -- '\n---- lane %s: %s after %d s ----\n' "$lane" \
      "$( ((rc == 0)) && echo passed || echo "FAILED (exit $rc)")" \
      $((SECONDS - ${started[$lane]}))
    cat "$dir/$lane.log"
    ((rc == 0)) || failed+=("$lane")
  done
  if ((${#failed[@]})); then
    echo "failed: ${failed[*]} (logs in $dir/)" >&2
    return 1
  fi
}
