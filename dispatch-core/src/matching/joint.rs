//! Joint assignment for surges: the Hungarian algorithm and its exhaustive-search oracle.

/// Joint assignment: gives each row (incident) at most one column (responder), first
/// maximising how many rows get one, then minimising the total cost. `None` = not allowed.
/// Hungarian algorithm with potentials, O(n²m); deterministic for a given matrix.
pub fn assign_jointly(costs: &[Vec<Option<u64>>]) -> Vec<Option<usize>> {
    let n = costs.len();
    if n == 0 {
        return Vec::new();
    }
    let m_real = costs.iter().map(Vec::len).max().unwrap_or(0);
    let feasible_sum: u64 = costs.iter().flatten().flatten().sum();
    // Any unassigned row costs more than every feasible assignment together, so cardinality
    // comes first. Dummy columns (one per row) make the matrix wide enough.
    let big = i64::try_from(feasible_sum)
        .unwrap_or(i64::MAX / 4)
        .saturating_add(1)
        .min(i64::MAX / 4);
    let m = m_real + n;
    let cost = |i: usize, j: usize| -> i64 {
        costs[i].get(j).copied().flatten().map_or(big, |c| c as i64)
    };
    const INF: i64 = i64::MAX / 2;
    let (mut u, mut v) = (vec![0i64; n + 1], vec![0i64; m + 1]);
    let (mut p, mut way) = (vec![0usize; m + 1], vec![0usize; m + 1]);
    for i in 1..=n {
        p[0] = i;
        let mut j0 = 0usize;
        let mut minv = vec![INF; m + 1];
        let mut used = vec![false; m + 1];
        loop {
            used[j0] = true;
            let i0 = p[j0];
            let mut delta = INF;
            let mut j1 = 0usize;
            for j in 1..=m {
                if !used[j] {
                    let cur = cost(i0 - 1, j - 1) - u[i0] - v[j];
                    if cur < minv[j] {
                        minv[j] = cur;
                        way[j] = j0;
                    }
                    if minv[j] < delta {
                        delta = minv[j];
                        j1 = j;
                    }
                }
            }
            for j in 0..=m {
                if used[j] {
                    u[p[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
            if p[j0] == 0 {
                break;
            }
        }
        loop {
            let j1 = way[j0];
            p[j0] = p[j1];
            j0 = j1;
            if j0 == 0 {
                break;
            }
        }
    }
    let mut out = vec![None; n];
    for (j, &row) in p.iter().enumerate().skip(1) {
        if row != 0 {
            let (i, c) = (row - 1, j - 1);
            if c < m_real && costs[i].get(c).copied().flatten().is_some() {
                out[i] = Some(c);
            }
        }
    }
    out
}

/// (rows assigned, total cost) of an assignment; for tests and the surge reason.
pub fn assignment_value(costs: &[Vec<Option<u64>>], a: &[Option<usize>]) -> (usize, u64) {
    a.iter()
        .enumerate()
        .filter_map(|(i, c)| c.and_then(|c| costs[i][c]))
        .fold((0, 0), |(n, s), c| (n + 1, s + c))
}

/// The oracle: every assignment, exhaustively; the best (most rows, then least cost).
pub fn assign_exhaustive(costs: &[Vec<Option<u64>>]) -> (usize, u64) {
    fn go(
        costs: &[Vec<Option<u64>>],
        i: usize,
        used: &mut Vec<bool>,
        n: usize,
        s: u64,
        best: &mut (usize, u64),
    ) {
        if i == costs.len() {
            if n > best.0 || (n == best.0 && s < best.1) {
                *best = (n, s);
            }
            return;
        }
        go(costs, i + 1, used, n, s, best);
        for (j, c) in costs[i].iter().enumerate() {
            if let Some(c) = c {
                if !used[j] {
                    used[j] = true;
                    go(costs, i + 1, used, n + 1, s + c, best);
                    used[j] = false;
                }
            }
        }
    }
    let m = costs.iter().map(Vec::len).max().unwrap_or(0);
    let mut best = (0, u64::MAX);
    go(costs, 0, &mut vec![false; m], 0, 0, &mut best);
    if best.0 == 0 {
        best.1 = 0;
    }
    best
}
