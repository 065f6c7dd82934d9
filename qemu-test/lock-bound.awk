# The lower bound of qemu-test/lock-bound.sh: reads the trace text of a
# traced `parmod -j 1` boot of qemu-test/lock-trace.sh, with
#   -v recs=FILE   parmod's trace records, one a line: start_ns end_ns kind
#   -v deps=FILE   the kernel's modules.dep
#   -v cpus=N      the CPUs of the bound (default 2)
#   -v totals=FILE optional: "module ms" lines, the loads' times in boots
#                  without tracing (several lines a module: the least counts)
# and prints each load cut at its ftrace_lock sections, then the bound.
#
# Costs are the loading task's CPU time (sched_switch) in each part, the
# same in any schedule by assumption. A load's parts: pre (finit_module to
# the ftrace_module_enable call: reading, signature, layout, symbols,
# relocations, ftrace_module_init, complete_formation), enable (serial,
# under ftrace_lock), mid (notifiers, sysfs, the module's init), free_mem
# (serial again), tail (to the return). During another load's enable a
# load can run one of its pre, mid or tail parts and nothing under the lock.

function cpu_time(p, t) { return run[p] + (on[p] ? t - since[p] : 0) }
function ms(x) { return sprintf("%.1f", x * 1000) }
function wrap(s,   n, a, i, l) {
    n = split(s, a, " "); l = " "
    for (i = 1; i <= n; i++) { if (length(l) + length(a[i]) > 100) { print l; l = " " }; l = l " " a[i] }
    if (l != " ") print l
}
function norm(s) { sub(/.*\//, "", s); sub(/\.ko(\.[a-z0-9]+)?$/, "", s); gsub(/-/, "_", s); return s }
# Every dependency of m, transitively, among the loaded modules: clo[m, d],
# and as a list, cl[m].
function closure(m,   n, i, a, d, e, nb, b) {
    if (m in closed) return
    closed[m] = 1; cl[m] = ""
    n = split(dep[m], a, " ")
    for (i = 1; i <= n; i++) {
        d = a[i]
        if (!(d in part)) continue
        closure(d)
        nb = split(d cl[d], b, " ")
        for (e = 1; e <= nb; e++) if (!((m, b[e]) in clo)) { clo[m, b[e]] = 1; cl[m] = cl[m] " " b[e] }
    }
}
# The longest chain of loads ending with m (dependencies first), the loads
# taking cost[] (memo: memo[]).
function chain(m, cost, memo,   a, n, i, best) {
    if (m in memo) return memo[m]
    best = 0; n = split(cl[m], a, " ")
    for (i = 1; i <= n; i++) if (chain(a[i], cost, memo) > best) best = chain(a[i], cost, memo)
    memo[m] = best + cost[m]
    return memo[m]
}
# The same, counted from the end of x's load: the chain of x's dependents.
function chain_after(m, x,   a, n, i, best) {
    if (m in cpx) return cpx[m]
    best = 0; n = split(cl[m], a, " ")
    for (i = 1; i <= n; i++) if ((a[i], x) in clo && chain_after(a[i], x) > best) best = chain_after(a[i], x)
    cpx[m] = best + c[m, "tot"]
    return cpx[m]
}
# At most how much work the others can do during x's enable when x (total
# CPU time) of other work was done before it: the relaxation below.
function fill_at(x,   f, i, take) {
    f = free_fill
    for (i = 1; i <= ninc && x > 0; i++) {
        take = (x >= inc_c[i]) ? 1 : x / inc_c[i]
        f += take * inc_g[i]; x -= take * inc_c[i]
    }
    return f
}
# During the phase (at least S long) the CPUs have cpus * S, of it S for x and at most fill_at(x) for the others.
function lb_work(x) { return (W + (cpus - 1) * S - fill_at(x)) / cpus }
function lb_time(x,   t) { t = (Wanc + c[X, "pre"] + x) / cpus; return (tau > t ? tau : t) + S + rX }
# The greedy filling: the work the others would do during x's enable
# with the modules in U complete before it and those in M at their mid part.
function filling(   m, f, ok, a, n, i) {
    f = 0
    for (m in other) {
        if (m in U) continue
        if (m in M) { f += c[m, "mid"]; continue }
        ok = 1; n = split(cl[m], a, " ")
        for (i = 1; i <= n; i++) if (!(a[i] in U)) { ok = 0; break }
        if (ok) f += c[m, "pre"]
    }
    return f
}

BEGIN {
    if (cpus == "") cpus = 2
    while ((getline line < recs) > 0) {
        split(line, f, " ")
        if (f[3] != 0 || f[1] == 0) continue
        nr++; rs[nr] = f[1] / 1e9; re[nr] = f[2] / 1e9
    }
    close(recs)
    for (i = 2; i <= nr; i++) {
        va = rs[i]; vb = re[i]
        for (j = i - 1; j >= 1 && rs[j] > va; j--) { rs[j + 1] = rs[j]; re[j + 1] = re[j] }
        rs[j + 1] = va; re[j + 1] = vb
    }
    # the boundaries in time order: 2i - 1 = start of record i, 2i = its end
    for (i = 1; i <= nr; i++) { bt[2 * i - 1] = rs[i]; bt[2 * i] = re[i] }
    nb = 2 * nr; nextb = 1
    while ((getline line < deps) > 0) {
        k = index(line, ":")
        if (k == 0) continue
        m = norm(substr(line, 1, k - 1)); rest = substr(line, k + 1)
        n = split(rest, a, " "); s = ""
        for (i = 1; i <= n; i++) s = s " " norm(a[i])
        dep[m] = s; indeps[m] = 1
    }
    close(deps)
    if (totals != "") {
        while ((getline line < totals) > 0) {
            n = split(line, a, " ")
            if (n == 0 || a[1] ~ /^#/) continue
            if (n != 2 || a[2] !~ /^[0-9.]+$/) { print "lock-bound: " totals ": not a \"module ms\" line: " line > "/dev/stderr"; bad = 1; exit 1 }
            m = norm(a[1])
            if (!(m in untraced) || a[2] / 1000 < untraced[m]) untraced[m] = a[2] / 1000
        }
        close(totals)
    }
}

$2 ~ /^\[[0-9]+\]$/ {
    pid = $1; sub(/.*-/, "", pid)
    cpu = substr($2, 2, length($2) - 2) + 0
    t = $4; sub(/:$/, "", t); t += 0
    ev = $5; sub(/:$/, "", ev)
    # parmod's record boundaries up to now: every task's CPU time then
    while (nextb <= nb && bt[nextb] <= t) {
        for (p in seen) snap[nextb, p] = cpu_time(p, bt[nextb])
        nextb++
    }
    if (ev == "sched_switch") {
        pp = ""; np = ""
        for (i = 6; i <= NF; i++) {
            if ($i ~ /^prev_pid=/) pp = substr($i, 10)
            if ($i ~ /^next_pid=/) np = substr($i, 10)
        }
        if (pp == "0") pp = "idle" cpu
        if (np == "0") np = "idle" cpu
        seen[pp] = 1; seen[np] = 1
        if (on[pp]) { run[pp] += t - since[pp]; on[pp] = 0 }
        since[np] = t; on[np] = 1
        next
    }
    if (ev == "module_load" || ev ~ /^contention_/) next
    base = ev; ret = sub(/_ret$/, "", base); sub(/[0-9]+$/, "", base); sub(/^module_/, "", base)
    if (base != "init" && base != "enable" && base != "free_mem" && base != "release_mod") next
    if (!ret && match($0, /name="[^"]*"/)) modof[pid] = substr($0, RSTART + 6, RLENGTH - 7)
    m = modof[pid]
    if (m == "") next
    if (base == "release_mod") { failed[m] = 1; next }
    k = base (ret ? "_ret" : "")
    if (!(m in mods)) { mods[m] = 1; mpid[m] = pid; nmods++ }
    else if (mpid[m] != pid) { err = err sprintf("%s: probes from two tasks (%s, %s)\n", m, mpid[m], pid) }
    if (!((m, k) in et)) { et[m, k] = t; ec[m, k] = cpu_time(pid, t) }
    seen[pid] = 1
}

END {
    if (bad) exit 1
    while (nextb <= nb) { for (p in seen) snap[nextb, p] = cpu_time(p, bt[nextb]); nextb++ }
    if (nmods == 0) { print "lock-bound: no lt/ probe events in the trace: the probes were not enabled in that boot (look for lock-trace-error in its console log)" > "/dev/stderr"; exit 1 }
    if (nr == 0) { print "lock-bound: parmod's trace has no module records" > "/dev/stderr"; exit 1 }
    # each module in the one record that holds its probes (-j 1: loads one at a time)
    for (m in mods) {
        if (!((m, "init") in et)) { err = err m ": no ftrace_module_init call\n"; continue }
        t = et[m, "init"]; lo = 1; hi = nr
        while (lo < hi) { mid = int((lo + hi + 1) / 2); if (rs[mid] <= t) lo = mid; else hi = mid - 1 }
        r = lo
        if (failed[m]) { nfail++; fl = fl " " m; continue }
        split("init init_ret enable enable_ret free_mem free_mem_ret", ks, " ")
        prev = rs[r]
        for (i = 1; i <= 6; i++) {
            if (!((m, ks[i]) in et) || et[m, ks[i]] < prev || et[m, ks[i]] > re[r]) { err = err sprintf("%s: %s missing or outside its load %.6f-%.6f\n", m, ks[i], rs[r], re[r]); break }
            prev = et[m, ks[i]]
        }
        if (i <= 6) continue
        if (rused[r] != "") { err = err sprintf("%s and %s in one parmod record: not a -j 1 run?\n", rused[r], m); continue }
        rused[r] = m
        p = mpid[m]; cs = snap[2 * r - 1, p] + 0; ce = snap[2 * r, p] + 0
        w[m, "tot"] = re[r] - rs[r]; c[m, "tot"] = ce - cs
        w[m, "pre1"] = et[m, "init"] - rs[r]; c[m, "pre1"] = ec[m, "init"] - cs
        w[m, "isec"] = et[m, "init_ret"] - et[m, "init"]; c[m, "isec"] = ec[m, "init_ret"] - ec[m, "init"]
        w[m, "pre2"] = et[m, "enable"] - et[m, "init_ret"]; c[m, "pre2"] = ec[m, "enable"] - ec[m, "init_ret"]
        w[m, "ser"] = et[m, "enable_ret"] - et[m, "enable"]; c[m, "ser"] = ec[m, "enable_ret"] - ec[m, "enable"]
        w[m, "mid"] = et[m, "free_mem"] - et[m, "enable_ret"]; c[m, "mid"] = ec[m, "free_mem"] - ec[m, "enable_ret"]
        w[m, "fm"] = et[m, "free_mem_ret"] - et[m, "free_mem"]; c[m, "fm"] = ec[m, "free_mem_ret"] - ec[m, "free_mem"]
        w[m, "tail"] = re[r] - et[m, "free_mem_ret"]; c[m, "tail"] = ce - ec[m, "free_mem_ret"]
        c[m, "pre"] = c[m, "pre1"] + c[m, "isec"] + c[m, "pre2"]
        part[m] = 1; np_++
    }
    if (err != "") { printf "lock-bound: the trace is not of a -j 1 run with the probes of lock-trace.sh:\n%s", err > "/dev/stderr"; exit 1 }
    for (i = 1; i <= nr; i++) if (rused[i] == "") unmatched++
    span = re[nr] - rs[1]
    for (m in part) {
        for (k in w) { split(k, kk, SUBSEP); if (kk[1] == m) { sw[kk[2]] += w[k]; sc[kk[2]] += c[k] } }
        if (!(m in indeps)) nodep = nodep " " m
    }
    printf "%d loads (-j 1), %s ms from the first start to the last end, %s ms inside finit_module (wall), %s ms of it on a CPU\n", np_, ms(span), ms(sw["tot"]), ms(sc["tot"])
    if (nfail) printf "(failed, ftrace_release_mod, not counted:%s)\n", fl
    if (unmatched) printf "(%d records of parmod's trace hold no probed module: not counted)\n", unmatched
    if (nodep != "") printf "(not in modules.dep, taken to have no dependencies:%s)\n", nodep
    print ""
    print "Per load, ms of the loading task's CPU time (wall time in brackets): before ftrace_module_init, ftrace_module_init,"
    print "from there to ftrace_module_enable, enable (serial), mid (notifiers, sysfs, init), ftrace_free_mem, the rest"
    printf "%-22s %18s %9s %6s %8s %18s %8s %6s %6s\n", "module", "load", "pre-lock", "init", "to-enab", "enable", "mid", "free", "rest"
    cmd = "sort -k2,2 -g -r"
    for (m in part)
        printf "%-22s %8s (%7s) %9s %6s %8s %8s (%7s) %8s %6s %6s\n", m, ms(c[m, "tot"]), ms(w[m, "tot"]), ms(c[m, "pre1"]), ms(c[m, "isec"]), ms(c[m, "pre2"]), ms(c[m, "ser"]), ms(w[m, "ser"]), ms(c[m, "mid"]), ms(c[m, "fm"]), ms(c[m, "tail"]) | cmd
    close(cmd)
    printf "%-22s %8s (%7s) %9s %6s %8s %8s (%7s) %8s %6s %6s\n", "total", ms(sc["tot"]), ms(sw["tot"]), ms(sc["pre1"]), ms(sc["isec"]), ms(sc["pre2"]), ms(sc["ser"]), ms(sw["ser"]), ms(sc["mid"]), ms(sc["fm"]), ms(sc["tail"])
    d = sc["pre1"] + sc["isec"] + sc["pre2"] + sc["ser"] + sc["mid"] + sc["fm"] + sc["tail"] - sc["tot"]
    dw = sw["pre1"] + sw["isec"] + sw["pre2"] + sw["ser"] + sw["mid"] + sw["fm"] + sw["tail"] - sw["tot"]
    printf "parts minus loads: %s ms CPU, %s ms wall; loads %s ms of the span %s ms (parmod between loads: %s ms)\n", ms(d), ms(dw), ms(sw["tot"]), ms(span), ms(span - sw["tot"])

    # Tracing lengthens the loads (kprobe traps, trace events, for small
    # modules most). With the untraced times, each part loses the load's
    # whole excess over its untraced time: no part is then longer than
    # without tracing, if tracing only adds time.
    if (totals != "") {
        nex = 0; sex = 0
        for (m in part) {
            if (!(m in untraced)) { err = err m " "; continue }
            ex = w[m, "tot"] - untraced[m]
            if (ex <= 0) continue
            nex++; sex += ex
            c[m, "tot"] = 0
            split("pre1 isec pre2 ser mid fm tail", ks, " ")
            for (i = 1; i <= 7; i++) { c[m, ks[i]] = c[m, ks[i]] > ex ? c[m, ks[i]] - ex : 0; c[m, "tot"] += c[m, ks[i]] }
            c[m, "pre"] = c[m, "pre1"] + c[m, "isec"] + c[m, "pre2"]
        }
        if (err != "") { printf "lock-bound: %s has no time for: %s\n", totals, err > "/dev/stderr"; exit 1 }
        printf "\nCosts cut to the untraced times of %s: %d loads longer when traced, by %s ms in all; each of their\n", totals, nex, ms(sex)
        printf "parts shortened by that load's excess (a part at least 0).\n"
    }

    # --- the bound ------------------------------------------------------------
    W = 0; SER = 0; CH = 0; S = -1
    for (m in part) {
        closure(m)
        W += c[m, "tot"]; SER += c[m, "isec"] + c[m, "ser"] + c[m, "fm"]
        if (c[m, "ser"] > S) { S = c[m, "ser"]; X = m }
    }
    for (m in part) ctot[m] = c[m, "tot"]
    for (m in part) if (chain(m, ctot, cp) > CH) { CH = chain(m, ctot, cp); chm = m }
    # with the untraced times: their chain and work (wall time, as parmod-plan report counts)
    CHU = 0; WU = 0
    if (totals != "") for (m in part) { WU += untraced[m]; if (chain(m, untraced, cpu_) > CHU) CHU = chain(m, untraced, cpu_) }
    # X's ancestors are complete before X starts, its dependents start after
    # it ends: neither runs during its enable
    tau = 0; Wanc = 0; nanc = 0
    for (d in part) if ((X, d) in clo) { anc[d] = 1; nanc++; Wanc += c[d, "tot"]; if (cp[d] > tau) tau = cp[d] }
    tau += c[X, "pre"]
    after = 0
    for (m in part) if ((m, X) in clo && chain_after(m, X) > after) after = chain_after(m, X)
    rX = c[X, "mid"] + c[X, "fm"] + c[X, "tail"] + after
    # The others: one part each during the enable. pre needs all of the
    # module's dependencies complete before the phase, mid also its own pre
    # and enable before it. A dependency shared by k of them is charged 1/k
    # to each, so the charges of a set never exceed what it really costs.
    tails = 0
    for (m in part) {
        if (m == X || m in anc || (m, X) in clo) continue
        other[m] = 1; tails += c[m, "tail"]
        n = split(cl[m], a, " ")
        for (i = 1; i <= n; i++) if (!(a[i] in anc)) share[a[i]]++
    }
    free_fill = tails; ninc = 0
    for (m in other) {
        base = 0; n = split(cl[m], a, " ")
        for (i = 1; i <= n; i++) if (!(a[i] in anc)) base += (c[a[i], "tot"] - c[a[i], "tail"]) / share[a[i]]
        g1 = c[m, "pre"]; c1 = base; g2 = c[m, "mid"]; c2 = base + c[m, "pre"] + c[m, "ser"]
        # the upper hull of (0, 0), (c1, g1), (c2, g2): the LP relaxation of
        # choosing one part per module
        if (c1 <= 0) {
            free_fill += g1
            if (g2 > g1) { if (c2 > c1) { ninc++; inc_c[ninc] = c2 - c1; inc_g[ninc] = g2 - g1 } else free_fill += g2 - g1 }
        } else if (g2 <= 0 || g1 / c1 >= g2 / c2) {
            if (g1 > 0) { ninc++; inc_c[ninc] = c1; inc_g[ninc] = g1 }
            if (g2 > g1) { ninc++; inc_c[ninc] = c2 - c1; inc_g[ninc] = g2 - g1 }
        } else { ninc++; inc_c[ninc] = c2; inc_g[ninc] = g2 }
    }
    for (i = 2; i <= ninc; i++) {
        va = inc_c[i]; vb = inc_g[i]
        for (j = i - 1; j >= 1 && inc_g[j] / inc_c[j] < vb / va; j--) { inc_c[j + 1] = inc_c[j]; inc_g[j + 1] = inc_g[j] }
        inc_c[j + 1] = va; inc_g[j + 1] = vb
    }
    # where the two bounds meet (lb_work falls with x, lb_time grows)
    lo = 0; hi = W
    for (i = 0; i < 100; i++) { mid = (lo + hi) / 2; if (lb_work(mid) > lb_time(mid)) lo = mid; else hi = mid }
    LBP = lb_work(hi) > lb_time(lo) ? lb_work(hi) : lb_time(lo)
    SF = (cpus - 1) * S; xs = 0; fl_ = free_fill
    for (i = 1; i <= ninc && fl_ < SF; i++) {
        if (fl_ + inc_g[i] >= SF) { xs += (SF - fl_) / inc_g[i] * inc_c[i]; fl_ = SF } else { xs += inc_c[i]; fl_ += inc_g[i] }
    }
    spare = cpus * tau - Wanc - c[X, "pre"]
    LB = CH; if (SER > LB) LB = SER; if (W / cpus > LB) LB = W / cpus; if (LBP > LB) LB = LBP
    if (CHU > LB) LB = CHU; if (WU / cpus > LB) LB = WU / cpus
    print ""
    printf "Bound for %d CPUs with these costs (CPU time, ms):\n", cpus
    printf "  longest chain         %9s  (ending with %s)\n", ms(CH), chm
    printf "  serial parts          %9s  (ftrace_module_init, enable and free_mem of every load, one at a time)\n", ms(SER)
    printf "  work / CPUs           %9s  (%s / %d)\n", ms(W / cpus), ms(W), cpus
    printf "  %-20s  %9s  (below)\n", "with " X "'s enable", ms(LBP)
    if (totals != "") {
        printf "  untraced: chain       %9s  (wall time, the least of each load's untraced times)\n", ms(CHU)
        printf "  untraced: work / CPUs %9s  (%s / %d)\n", ms(WU / cpus), ms(WU), cpus
    }
    if (totals != "") printf "  bound                 %9s  = %.3f x the untraced work\n", ms(LB), LB / WU
    else printf "  bound                 %9s  = %.3f x the work, %.3f x the -j 1 span\n", ms(LB), LB / W, LB / span
    print ""
    printf "%s's enable, the longest serial part: %s ms under ftrace_lock, from %s ms at the earliest (its %d\n", X, ms(S), ms(tau), nanc
    printf "dependencies in a chain, then its own %s ms before the lock); the other CPUs have %s ms to spare\n", ms(c[X, "pre"]), ms(spare)
    printf "until then. While it holds the lock no load passes a lock section, so a load runs at most one of its\n"
    printf "lock-free parts, and none completes that had not passed free_mem. The others can fill:\n"
    printf "  %9s ms  if only %s's dependencies completed before (%s ms of CPU time idle)\n", ms(free_fill), X, ms((cpus - 1) * S > free_fill ? (cpus - 1) * S - free_fill : 0)
    if (fl_ >= SF)
        printf "  all of it     once %s ms of other loads' work is done before the phase\n", ms(xs)
    else
        printf "  at most %s ms, whatever is done before the phase (%s ms idle at least)\n", ms(fl_), ms(SF - fl_)
    printf "(a relaxation: loads sharing a dependency share its cost, and a load may take its best part).\n"
    printf "A schedule that does x ms of such work first takes at least max((work + %d x phase - fill(x)) / %d,\n", cpus - 1, cpus
    printf "start(x) + phase + the rest of %s); the least over all x is %s ms" , X, ms(LBP)
    o = CH; if (SER > o) o = SER; if (W / cpus > o) o = W / cpus; if (CHU > o) o = CHU; if (WU / cpus > o) o = WU / cpus
    if (LBP > o) printf ", %s ms above the other bounds.\n", ms(LBP - o)
    else printf ": the phase forces no idle time beyond\nwhat the other bounds count.\n"

    # a filling, greedily: how close a schedule can come to the relaxation
    for (d in anc) U[d] = 1
    used = 0; cur = filling()
    while (cur < SF) {
        best = -1
        for (m in other) {
            if (m in U || m in M) continue
            for (k in add) delete add[k]
            cost = 0
            n = split(cl[m], a, " ")
            for (i = 1; i <= n; i++) if (!(a[i] in U)) { add[a[i]] = 1; cost += c[a[i], "tot"] - c[a[i], "tail"] }
            for (mode = 1; mode <= 3; mode++) {
                # 1: its pre-lock part during the phase; 2: its mid part; 3: complete it first
                if (mode == 1 && cost == 0) continue
                for (d in add) U[d] = 1
                cm = cost
                if (mode == 2) { M[m] = 1; cm += c[m, "pre"] + c[m, "ser"] }
                if (mode == 3) { U[m] = 1; cm += c[m, "tot"] - c[m, "tail"] }
                gain = filling() - cur
                for (d in add) delete U[d]
                if (mode == 2) delete M[m]
                if (mode == 3) delete U[m]
                if (cm > 0 && gain > 0 && gain / cm > best) { best = gain / cm; bm = m; bmode = mode; bcost = cm }
            }
        }
        if (best < 0) break
        n = split(cl[bm], a, " ")
        for (i = 1; i <= n; i++) U[a[i]] = 1
        if (bmode == 2) M[bm] = 1
        if (bmode == 3) U[bm] = 1
        used += bcost; cur = filling()
    }
    nu = 0; ul = ""; for (d in U) if (!(d in anc)) { nu++; ul = ul " " d }
    nm = 0; ml = ""; for (m in M) { nm++; ml = ml " " m }
    npre = 0; for (m in other) if (!(m in U) && !(m in M)) { ok = 1; n = split(cl[m], a, " "); for (i = 1; i <= n; i++) if (!(a[i] in U)) ok = 0; if (ok) npre++ }
    printf "\nA greedy filling (the most work during the phase per ms of work before it): complete %d loads first,\n%s ms of work (%s ms to spare before the phase):\n", nu, ms(used), ms(spare)
    wrap(ul)
    if (nm) { printf "start %d more whose mid part then runs during the phase:\n", nm; wrap(ml) }
    printf "and run the pre-lock parts of the %d loads that are then ready: %s ms of work during the phase\n(the other CPUs have %s ms).\n", npre, ms(cur), ms(SF)
}
