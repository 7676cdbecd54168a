//! Ordered work on every core: the sensors' batches (mbox messages extracted, observations
//! matched) are split into one contiguous share per thread and the results are put back in
//! input order, so that output order never depends on scheduling.

/// `f` applied to every item of `items`, on up to `jobs` scoped threads, results in input order.
/// Should a thread panic, each item of its share gets `on_panic(item)` instead, so one bad item
/// cannot end a whole scan.
pub fn map_in_order<T, R, F, P>(items: &[T], jobs: usize, f: F, on_panic: P) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(&T) -> R + Sync,
    P: Fn(&T) -> R,
{
    if jobs <= 1 || items.len() <= 1 {
        return items.iter().map(f).collect();
    }
    let share = items.len().div_ceil(jobs);
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(share)
            .map(|part| {
                (
                    part,
                    s.spawn(move || part.iter().map(f).collect::<Vec<_>>()),
                )
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|(part, h)| {
                h.join()
                    .unwrap_or_else(|_| part.iter().map(&on_panic).collect())
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::map_in_order;

    #[test]
    fn results_keep_input_order_whatever_the_number_of_jobs() {
        let items: Vec<u32> = (0..103).collect();
        let expected: Vec<u32> = items.iter().map(|i| i * 2).collect();
        for jobs in [0, 1, 2, 3, 8, 200] {
            assert_eq!(
                map_in_order(&items, jobs, |i| i * 2, |_| 0),
                expected,
                "{jobs}"
            );
        }
    }

    #[test]
    fn a_panicking_share_gets_the_fallback_and_the_others_their_results() {
        let items: Vec<u32> = (0..10).collect();
        let out = map_in_order(
            &items,
            2,
            |&i| {
                assert!(i < 5, "boom");
                i
            },
            |_| 99,
        );
        assert_eq!(out, vec![0, 1, 2, 3, 4, 99, 99, 99, 99, 99]);
    }
}
