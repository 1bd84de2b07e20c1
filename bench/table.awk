# bench/run's raw figures -> the markdown table (see report.sh).
function median(list,    a, k, i, j, t) {
    k = split(list, a, " ")
    for (i = 2; i <= k; i++)  # insertion sort: a handful of values
        for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
    if (k == 0) return ""
    return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
}
function fmt(x) {
    if (x == "" || x == "-") return "–"
    x += 0
    if (x == int(x)) return sprintf("%d", x)
    return x >= 100 ? sprintf("%.0f", x) : x >= 10 ? sprintf("%.1f", x) : sprintf("%.2f", x)
}
function ratio(peer, ours) {
    if (peer == "" || peer == "-" || ours == "" || ours == "-" || ours + 0 == 0) return "–"
    return sprintf("%.1f×", peer / ours)
}
# One row: label, the value per system (by key prefix), target text, met (yes/no/""),
# and whether the ratios are meaningful.
function row(label, key, target, met, with_ratios,    line, s, i) {
    if (!(("floor", key) in shown)) shown["floor", key] = "–"
    if (!(("floor-return", key) in shown)) shown["floor-return", key] = "–"
    line = "| " label
    for (i = 1; i <= ns; i++) line = line " | " shown[sys[i], key]
    line = line " | " shown["floor", key] " | " shown["floor-return", key] " | " target " | " met
    for (i = 3; i <= ns; i++)
        line = line " | " (with_ratios ? ratio(val[sys[i], key], val["fcgi-pm", key]) : "–")
    print line " |"
}
function set(s, key, v, text) { val[s, key] = v; shown[s, key] = text == "" ? fmt(v) : text }
function yes(cond) { return cond ? "yes" : "**no**" }
# A life-cycle target: met, or missed; missed with a yardstick above the target too
# means out of reach on this machine: the floor (apps/floor.c: fork, exit and wait
# alone), or the floor whose children are the library's workers (floor-return: the
# same loop and exit as examples/hello, under a manager that does nothing else).
function met(key, target,    v, f, w) {
    v = val["fcgi-pm", key]; f = val["floor", key]; w = val["floor-return", key]
    if (v == "") return ""
    if (v <= target) return "yes"
    if (f != "" && f > target) return "**no**: floor " fmt(f) " > target"
    if (w != "" && w > target) return "**no**: floor with the same workers " fmt(w) " > target"
    return "**no**"
}

BEGIN {
    ns = split("fcgi-pm fcgi-pm-cli procmanager engine multiwatch", sys, " ")
    name["fcgi-procmanager"] = "procmanager"; name["fcgi-engine"] = "engine"; name["fcgi-pm"] = "fcgi-pm"
}
$1 == "dispatch" {
    s = ($3 in name) ? name[$3] : $3
    set(s, "dispatch", $4, fmt($4) " ns ± " fmt($5) ", " $6 " syscalls")
    syscalls[s] = $6
    next
}
$3 == "throughput" { tput[$1] = tput[$1] " " $4; next }
$3 == "storm" { set($1, "storm", $6, $6 " of " $5); next }
$3 ~ /^crash/ { set($1, $3, $4); next }
{ set($1, $3 "@" $2, $4) }  # life cycle: system n measure median min max samples
END {
    for (i = 1; i <= ns; i++) {
        s = sys[i]
        if (!((s, "dispatch") in val)) set(s, "dispatch", "", "n/a")
        if (s in tput) set(s, "tput", median(tput[s]), sprintf("%.0f/s", median(tput[s])))
    }
    sf = median(tput["spawn-fcgi"])
    print "| measure | fcgi-pm (library) | fcgi-pm program | FCGI::ProcManager | FCGI::Engine::ProcManager | spawn-fcgi + multiwatch | floor (fork/exit only) | floor, the library's workers | target | met | ProcManager ÷ fcgi-pm | Engine ÷ fcgi-pm | multiwatch ÷ fcgi-pm |"
    print "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    d = val["fcgi-pm", "dispatch"]
    row("pre_dispatch + post_dispatch pair", "dispatch", "≤ 50 ns, 0 syscalls",
        d == "" ? "" : yes(d <= 50 && syscalls["fcgi-pm"] + 0 == 0), 1)
    row("respawn after SIGKILL of a worker, n=4", "respawn@4", "≤ 0.5", met("respawn@4", 0.5), 1)
    split("4 64 1024", sizes, " "); split("2 15 250", reload_t, " "); split("3 4 -", stop_t, " ")
    for (k = 1; k <= 3; k++) {
        n = sizes[k]
        if (!(("fcgi-pm", "reload@" n) in val)) continue
        row("reload (HUP; multiwatch: USR2): all replaced, n=" n, "reload@" n, "≤ " reload_t[k], met("reload@" n, reload_t[k]), 1)
    }
    for (k = 1; k <= 3; k++) {
        n = sizes[k]
        if (!(("fcgi-pm", "stop@" n) in val)) continue
        row("stop (TERM): manager and idle workers gone, n=" n, "stop@" n, stop_t[k] == "-" ? "–" : "≤ " stop_t[k],
            stop_t[k] == "-" ? "" : met("stop@" n, stop_t[k]), 1)
    }
    for (k = 1; k <= 3; k++) {
        n = sizes[k]
        if (!(("fcgi-pm", "startup@" n) in val)) continue
        row("startup: exec until n workers forked, n=" n, "startup@" n, n == 64 ? "≤ 15" : "–", n == 64 ? met("startup@" n, 15) : "", 1)
    }
    v = val["fcgi-pm", "orphans_100ms@4"]
    row("workers alive 100 ms after the manager is SIGKILLed (of 4)", "orphans_100ms@4", "0", yes(v == 0), 0)
    row("workers alive 2 s after the manager is SIGKILLed (of 4)", "orphans_2s@4", "0", yes(val["fcgi-pm", "orphans_2s@4"] == 0), 0)
    row("forks in the first second, app crashing at start (n=4)", "crash_first_s", "–", "", 0)
    v = val["fcgi-pm", "crash_per_s"]
    row("forks per second after that", "crash_per_s", "≤ n + 1 = 5, never gives up", yes(v <= 5 && v > 0), 0)
    row("requests failed while reloaded every 20 ms under load (2 workers)", "storm", "0", yes(val["fcgi-pm", "storm"] == 0), 0)
    # The target compares the same program: the fcgi-pm program running hello_plain
    # against spawn-fcgi -F2 running hello_plain. The library's hello is shown too.
    v = val["fcgi-pm-cli", "tput"]; lib = val["fcgi-pm", "tput"]
    row("throughput behind nginx, 2 workers (spawn-fcgi -F2 unsupervised, same program as the fcgi-pm program: " \
        sprintf("%.0f/s", sf) ")", "tput", "≥ 0.98 × spawn-fcgi",
        sf == "" ? "" : yes(v >= 0.98 * sf) sprintf(" (program %.3f×, library %.3f×)", v / sf, lib / sf), 0)
}
