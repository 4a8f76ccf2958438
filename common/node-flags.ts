// V8 flags every fedtunnel process runs with: in the bins' shebang lines, the image's ENTRYPOINT,
// spawnNode() (sandbox, tests) and the benchmark's spawns. Node refuses them in NODE_OPTIONS, so
// they go on the command line.
//
// --initial-old-space-size: a tunnel process keeps little live data (an agent about 8 MiB) while it
// moves 100+ MB/s, so V8 grows its young generation to the 16 MiB maximum. V8 starts a full
// mark-compact whenever the old generation's headroom (its allocation limit minus its size) is
// smaller than the young generation's capacity, so that a scavenge can always promote; and after
// each mark-compact it sizes that limit from the small live heap again (about 8 MiB of headroom).
// The result was a full GC every few megabytes that freed almost nothing: 20 per 0.8 GB through
// the agent in the bench, 50+ per 1.6 GB in the proxy-server in an earlier profile. A 64 MiB floor
// for the limit keeps the headroom above the young generation's capacity. It is a GC threshold,
// not a reservation: the heap still holds only live data and garbage not yet collected.
export const NODE_HEAP_FLAGS: readonly string[] = ['--initial-old-space-size=64'];
