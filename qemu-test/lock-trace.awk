# The report of qemu-test/lock-trace.sh: reads the trace text (tracefs
# `trace`, clock mono) of one traced boot. -v locks="NAME ADDR NAME ADDR ..."
# names the lock addresses the contention events were filtered to; with
# -v tsv=FILE the per-module table also goes to FILE (tab-separated, ms:
# module, enable, its wait, init, its wait, free_mem, its wait).
#
# Probe events (lt/NAME, from lock-trace.sh): module_init, module_enable,
# free_mem, release_mod at the call instructions (with name=), NAME_ret
# after them.
# A task's module is the name of its last probe with one.

function cpu_time(p, t) { return run[p] + (on[p] ? t - since[p] : 0) }
function idle_all(t,   c, s) { s = 0; for (c in cpus) s += cpu_time("idle" c, t); return s }
function ms(x) { return sprintf("%.1f", x * 1000) }

BEGIN {
    n = split(locks, a, " ")
    # (the events print the address without 0x)
    for (i = 1; i < n; i += 2) { sub(/^0x/, "", a[i + 1]); lockname[a[i + 1]] = a[i] }
}

$2 ~ /^\[[0-9]+\]$/ {
    pid = $1; sub(/.*-/, "", pid)
    cpu = substr($2, 2, length($2) - 2) + 0; cpus[cpu] = 1
    t = $4; sub(/:$/, "", t); t += 0
    ev = $5; sub(/:$/, "", ev)
    if (first == "") first = t
    last = t

    if (ev == "sched_switch") {
        pp = ""; np = ""
        for (i = 6; i <= NF; i++) {
            if ($i ~ /^prev_pid=/) { pp = substr($i, 10) }
            if ($i ~ /^next_pid=/) { np = substr($i, 10) }
        }
        if (pp == "0") pp = "idle" cpu
        if (np == "0") np = "idle" cpu
        if (on[pp]) { run[pp] += t - since[pp]; on[pp] = 0 }
        since[np] = t; on[np] = 1
        next
    }
    if (ev == "contention_begin" || ev == "contention_end") {
        addr = $6; L = (addr in lockname) ? lockname[addr] : addr
        if (ev == "contention_begin") {
            spin = ($0 ~ /SPIN/)
            if (!(pid in wstart)) {
                wstart[pid] = t; wlock[pid] = L; wcpu[pid] = cpu_time(pid, t)
                wphase[pid] = ""
                for (k in phase_open) { split(k, kk, SUBSEP); if (kk[1] == pid) wphase[pid] = kk[2] }
                # Who holds it: tasks inside an ftrace_lock section, not waiting.
                h = ""
                if (L == "ftrace_lock")
                    for (k in phase_open) {
                        split(k, kk, SUBSEP)
                        if (kk[1] != pid && !(kk[1] in wstart)) h = h (h == "" ? "" : ",") modof[kk[1]] ":" kk[2]
                    }
                wholder[pid] = h
            }
            if (spin) spinning[pid] = t
            else if (pid in spinning) { spun[pid] += t - spinning[pid]; delete spinning[pid] }
        } else if (pid in wstart) {
            if (pid in spinning) { spun[pid] += t - spinning[pid]; delete spinning[pid] }
            w = t - wstart[pid]; L = wlock[pid]
            oncpu = cpu_time(pid, t) - wcpu[pid]
            nw[L]++; tw[L] += w; tcpu[L] += oncpu; tspin[L] += spun[pid]
            m = modof[pid]
            if (wphase[pid] != "") { pw[m, wphase[pid]] += w }
            if (w >= 0.02)
                big[++nbig] = sprintf("%9.3f %-20s %-17s %8s %8s %8s  %-10s %s", wstart[pid] - first, (m == "" ? "pid " pid : m), L, ms(w), ms(oncpu), ms(spun[pid]), (wphase[pid] == "" ? "-" : wphase[pid]), (wholder[pid] == "" ? "-" : wholder[pid]))
            delete wstart[pid]; delete spun[pid]
        }
        next
    }
    # (module_init, module_enable: "enable" alone would clash with the
    # group's enable file in tracefs)
    # (a second call site of the same function: release_mod2, release_mod2_ret)
    base = ev; ret = sub(/_ret$/, "", base); sub(/[0-9]+$/, "", base); sub(/^module_/, "", base)
    if (ret) {
        ph = base
        if ((pid, ph) in phase_open) {
            d = t - phase_open[pid, ph]; m = modof[pid]
            pd[m, ph] += d
            if (ph == "enable") enable_idle[m] += idle_all(t) - enable_idle0[pid]
            delete phase_open[pid, ph]
        }
        next
    }
    if (base == "init" || base == "enable" || base == "free_mem" || base == "release_mod") {
        if (match($0, /name="[^"]*"/)) modof[pid] = substr($0, RSTART + 6, RLENGTH - 7)
        m = modof[pid]
        if (!(m in seen)) { seen[m] = 1; mods[++nmods] = m }
        phase_open[pid, base] = t
        if (base == "enable") enable_idle0[pid] = idle_all(t)
        next
    }
}

END {
    span = last - first
    printf "trace span %s ms, %d CPUs\n\n", ms(span), length(cpus)
    print "Per module, the ftrace_lock sections (ms): ftrace_module_enable (its own wait for the lock in brackets),"
    print "ftrace_module_init, ftrace_free_mem (each with its wait), and the CPU idle time (all CPUs) during enable."
    printf "%-22s %16s %16s %16s %10s\n", "module", "enable (wait)", "init (wait)", "free_mem (wait)", "idle"
    cmd = "sort -k2,2 -g -r"
    for (i = 1; i <= nmods; i++) {
        m = mods[i]
        printf "%-22s %9s (%5s) %9s (%5s) %9s (%5s) %10s\n", m, ms(pd[m, "enable"]), ms(pw[m, "enable"]), ms(pd[m, "init"]), ms(pw[m, "init"]), ms(pd[m, "free_mem"]), ms(pw[m, "free_mem"]), ms(enable_idle[m]) | cmd
        if (tsv != "") printf "%s\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\n", m, pd[m, "enable"] * 1000, pw[m, "enable"] * 1000, pd[m, "init"] * 1000, pw[m, "init"] * 1000, pd[m, "free_mem"] * 1000, pw[m, "free_mem"] * 1000 > tsv
        se += pd[m, "enable"]; sw += pw[m, "enable"]; si += pd[m, "init"]; siw += pw[m, "init"]; sf += pd[m, "free_mem"]; sfw += pw[m, "free_mem"]
    }
    close(cmd)
    printf "%-22s %9s (%5s) %9s (%5s) %9s (%5s)\n", "total (" nmods ")", ms(se), ms(sw), ms(si), ms(siw), ms(sf), ms(sfw)
    printf "serial phases (enable minus its wait): %s ms\n\n", ms(se - sw)
    print "Lock waits: count, total ms, of it on a CPU (spinning or running), of it in optimistic spinning"
    for (L in nw) printf "  %-18s %6d %10s %10s %10s\n", L, nw[L], ms(tw[L]), ms(tcpu[L]), ms(tspin[L])
    print ""
    print "Waits of 20 ms or more: start (s into the trace), waiter, lock, ms, on CPU, spinning, in, behind (holder:section)"
    for (i = 1; i <= nbig; i++) print big[i]
    print ""
    printf "CPU idle over the trace:"
    for (c in cpus) printf " cpu%s %s ms", c, ms(cpu_time("idle" c, last))
    printf " (of %s ms each)\n", ms(span)
}
