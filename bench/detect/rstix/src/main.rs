//! rstix 0.23 in the detection benchmark (issue 4): the same indicators and observations as
//! `kizuna match`, every pattern evaluated against every observation, which is the way rstix
//! offers (it has no index). A full run (10⁴ patterns × 10⁶ observations = 10¹⁰ evaluations)
//! would take hours, so this measures the first SAMPLE observations against every pattern and
//! extrapolates to FULL observations; the output says so.
//!
//! Usage: `detect-bench-rstix INDICATORS.jsonl OBSERVATIONS.jsonl SAMPLE FULL`
//!
//! For each observation (one STIX bundle per line) rstix does what its own
//! `evaluate_observed_data` does: `Bundle::parse` (its typed model), the list of SCOs named by
//! the observed-data's `object_refs` stamped with `first_observed`, then `Pattern::evaluate` of
//! every pattern. The same sample is also run through `kizuna-pattern` pattern by pattern (no
//! index: `Observations::from_json_owned`, then `Pattern::is_match` of every pattern), which
//! separates what the engine costs from what `kizuna match`'s index saves, and whose verdicts
//! are compared with rstix's. Both use every core (observations split between threads), as
//! `kizuna match` does.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::time::Instant;

use rstix::model::sdo::{ObservedDataForm, SdoObject};
use rstix::model::{Bundle, StixObject};
use rstix::pattern::{ObservationContext, TimestampedObservation};
use serde_json::Value;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// What rstix's `evaluate_observed_data` builds, for every observed-data of the bundle.
fn rstix_observations(bundle: &Bundle) -> Option<Vec<TimestampedObservation<'_>>> {
    let mut out = Vec::new();
    for obj in bundle.objects() {
        let StixObject::Sdo(SdoObject::ObservedData(od)) = obj else {
            continue;
        };
        let ObservedDataForm::ObjectRefs(refs) = &od.form else {
            return None;
        };
        for id in refs {
            let Some(StixObject::Sco(sco)) = bundle.get(id) else {
                return None;
            };
            out.push(TimestampedObservation {
                sco,
                at: Some(od.first_observed.clone()),
            });
        }
    }
    Some(out)
}

/// Per engine: matched (observation, pattern) pairs, and observations or evaluations refused.
#[derive(Default)]
struct Tally {
    matched: Vec<(usize, usize)>,
    bad_observations: usize,
    eval_errors: usize,
}

fn run_rstix(lines: &[(usize, &str)], patterns: &[(usize, rstix::Pattern)]) -> Tally {
    let mut t = Tally::default();
    for (i, line) in lines {
        let Ok(bundle) = Bundle::parse(line) else {
            t.bad_observations += 1;
            continue;
        };
        let Some(list) = rstix_observations(&bundle) else {
            t.bad_observations += 1;
            continue;
        };
        let ctx = ObservationContext {
            observations: &list,
            bundle: Some(&bundle),
        };
        for (j, p) in patterns {
            match p.evaluate(&ctx) {
                Ok(true) => t.matched.push((*i, *j)),
                Ok(false) => {}
                Err(_) => t.eval_errors += 1,
            }
        }
    }
    t
}

fn run_kizuna(lines: &[(usize, &str)], patterns: &[(usize, kizuna_pattern::Pattern)]) -> Tally {
    let mut t = Tally::default();
    for (i, line) in lines {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            t.bad_observations += 1;
            continue;
        };
        let Ok(obs) =
            kizuna_pattern::Observations::from_json_owned(v, kizuna_pattern::SpecVersion::V21)
        else {
            t.bad_observations += 1;
            continue;
        };
        for (j, p) in patterns {
            match p.is_match(&obs) {
                Ok(true) => t.matched.push((*i, *j)),
                Ok(false) => {}
                Err(_) => t.eval_errors += 1,
            }
        }
    }
    t
}

/// CPU seconds (user + system) used by this process so far, from `/proc/self/stat` (ticks of
/// 1/100 s): the machine is shared, so CPU time is the steadier measure beside wall time.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|x| x.parse().ok())
        .collect();
    f.iter().sum::<f64>() / 100.0
}

/// Runs `f` on `threads` slices of the sample and merges the tallies; returns the wall and CPU
/// seconds.
fn parallel<'a, F>(lines: &'a [(usize, &'a str)], threads: usize, f: F) -> (Tally, f64, f64)
where
    F: Fn(&'a [(usize, &'a str)]) -> Tally + Sync,
{
    let (start, cpu) = (Instant::now(), cpu_seconds());
    let chunk = lines.len().div_ceil(threads.max(1)).max(1);
    let parts: Vec<Tally> = std::thread::scope(|s| {
        let handles: Vec<_> = lines
            .chunks(chunk)
            .map(|c| {
                let f = &f;
                s.spawn(move || f(c))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let (secs, cpu) = (start.elapsed().as_secs_f64(), cpu_seconds() - cpu);
    let mut all = Tally::default();
    for p in parts {
        all.matched.extend(p.matched);
        all.bad_observations += p.bad_observations;
        all.eval_errors += p.eval_errors;
    }
    all.matched.sort_unstable();
    (all, secs, cpu)
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, ind_path, obs_path, sample, full] = args.as_slice() else {
        return Err(
            "usage: detect-bench-rstix INDICATORS.jsonl OBSERVATIONS.jsonl SAMPLE FULL".into(),
        );
    };
    let sample: usize = sample.parse()?;
    let full: f64 = full.parse()?;
    let threads = std::thread::available_parallelism().map_or(1, usize::from);

    let mut texts = Vec::new();
    for line in std::fs::read_to_string(ind_path)?.lines() {
        let v: Value = serde_json::from_str(line)?;
        texts.push(
            v["pattern"]
                .as_str()
                .ok_or("indicator without pattern")?
                .to_owned(),
        );
    }
    let owned: Vec<String> = BufReader::new(File::open(obs_path)?)
        .lines()
        .take(sample)
        .collect::<Result<_, _>>()?;
    let lines: Vec<(usize, &str)> = owned.iter().map(String::as_str).enumerate().collect();

    let start = Instant::now();
    let r_patterns: Vec<(usize, rstix::Pattern)> = texts
        .iter()
        .enumerate()
        .filter_map(|(j, t)| rstix::Pattern::parse(t).ok().map(|p| (j, p)))
        .collect();
    let r_parse = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let k_patterns: Vec<(usize, kizuna_pattern::Pattern)> = texts
        .iter()
        .enumerate()
        .filter_map(|(j, t)| kizuna_pattern::Pattern::parse(t).ok().map(|p| (j, p)))
        .collect();
    let k_parse = start.elapsed().as_secs_f64();

    let (r, r_secs, r_cpu) = parallel(&lines, threads, |c| run_rstix(c, &r_patterns));
    let (k, k_secs, k_cpu) = parallel(&lines, threads, |c| run_kizuna(c, &k_patterns));

    let n = lines.len();
    let evals = (n * r_patterns.len()) as f64;
    println!(
        "rstix 0.23 sample: {} patterns ({} refused by its parser) x {n} observations on {threads} threads = {evals:.0} evaluations in {r_secs:.2} s ({:.0} evaluations/s, {:.1} observations/s; {r_cpu:.2} CPU s, {:.1} observations per CPU second); {} matches, {} evaluation errors, {} observations refused; parse {:.0} patterns/s (one thread)",
        r_patterns.len(),
        texts.len() - r_patterns.len(),
        evals / r_secs,
        n as f64 / r_secs,
        n as f64 / r_cpu,
        r.matched.len(),
        r.eval_errors,
        r.bad_observations,
        texts.len() as f64 / r_parse,
    );
    println!(
        "kizuna-pattern pattern by pattern (no index), same sample: {} patterns x {n} observations in {k_secs:.2} s ({:.1} observations/s; {k_cpu:.2} CPU s, {:.1} observations per CPU second); {} matches, {} evaluation errors; parse {:.0} patterns/s (one thread)",
        k_patterns.len(),
        n as f64 / k_secs,
        n as f64 / k_cpu,
        k.matched.len(),
        k.eval_errors,
        texts.len() as f64 / k_parse,
    );
    let only_r = r
        .matched
        .iter()
        .filter(|m| k.matched.binary_search(m).is_err())
        .count();
    let only_k = k
        .matched
        .iter()
        .filter(|m| r.matched.binary_search(m).is_err())
        .count();
    println!(
        "verdicts on the sample: {} pairs matched by both, {only_k} by kizuna-pattern only, {only_r} by rstix only",
        k.matched.len() - only_k
    );
    let r_full = r_parse + r_secs / n as f64 * full;
    println!(
        "rstix EXTRAPOLATED to {} indicators x {full:.0} observations: {r_full:.0} s = {:.1} observations/s",
        texts.len(),
        full / r_full
    );
    println!("RSTIX_EXTRAPOLATED_SECONDS={r_full:.1}");
    println!("RSTIX_CPU_SECONDS_PER_OBSERVATION={:.9}", r_cpu / n as f64);
    Ok(())
}
