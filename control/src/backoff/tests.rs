//! Schedule bounds with seeded randomness.

use super::*;
use rand::rngs::StdRng;
use rand::SeedableRng;

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// Each delay is the previous one ×2 plus up to 10 %, capped.
fn assert_exponential(prev: Duration, d: Duration, cap: Duration) {
    let lo = (prev * 2).min(cap);
    let hi = prev.mul_f64(2.2).min(cap);
    assert!(
        d >= lo && d <= hi,
        "{d:?} not in [{lo:?}, {hi:?}] after {prev:?}"
    );
}

#[test]
fn first_login_doubles_from_two_seconds_and_caps_at_ten() {
    for seed in 0..50 {
        let mut rng = StdRng::seed_from_u64(seed);
        let now = Instant::now();
        let mut b = FastBackoff::first_login();
        let d1 = b.next_delay(now, &mut rng);
        assert!(d1 >= ms(2000) && d1 < ms(2200), "{d1:?}");
        let mut prev = d1;
        for _ in 0..10 {
            let d = b.next_delay(now, &mut rng);
            assert_exponential(prev, d, FIRST_LOGIN_MAX_INTERVAL);
            prev = d;
        }
        assert_eq!(prev, FIRST_LOGIN_MAX_INTERVAL);
    }
}

#[test]
fn jitter_is_carried_forward() {
    // With the same random draws, the second delay is 2 × d1 × (1 + u2 · 0.1), not 4 s × (..).
    let mut rng = StdRng::seed_from_u64(7);
    let mut draws = StdRng::seed_from_u64(7);
    let mut b = FastBackoff::relogin();
    let now = Instant::now();
    let u1: f64 = draws.gen();
    let u2: f64 = draws.gen();
    let d1 = b.next_delay(now, &mut rng);
    let d2 = b.next_delay(now, &mut rng);
    let expect1 = ms(2000) + Duration::from_nanos((u1 * 0.1 * 2e9) as u64);
    assert_eq!(d1, expect1);
    let base2 = d1 * 2;
    let expect2 = base2 + Duration::from_nanos((u2 * 0.1 * base2.as_nanos() as f64) as u64);
    assert_eq!(d2, expect2);
}

#[test]
fn relogin_caps_at_twenty() {
    let mut rng = StdRng::seed_from_u64(3);
    let mut b = FastBackoff::relogin();
    let now = Instant::now();
    let delays: Vec<_> = (0..8).map(|_| b.next_delay(now, &mut rng)).collect();
    assert!(
        delays[3] >= ms(16000) && delays[3] < ms(20000),
        "{delays:?}"
    );
    assert_eq!(delays[4], RELOGIN_MAX_INTERVAL);
    assert_eq!(delays[7], RELOGIN_MAX_INTERVAL);
    b.reset();
    let d = b.next_delay(now, &mut rng);
    assert!(d >= ms(2000) && d < ms(2200));
}

#[test]
fn login_fail_exit_gives_up_immediately() {
    let mut rng = StdRng::seed_from_u64(0);
    let now = Instant::now();
    assert_eq!(
        LoginBackoff::first_login(true).on_failure(now, &mut rng),
        LoginRetry::Exit
    );
    let mut keep = LoginBackoff::first_login(false);
    assert!(matches!(keep.on_failure(now, &mut rng), LoginRetry::After(d) if d >= ms(2000)));
    let mut re = LoginBackoff::relogin();
    for _ in 0..10 {
        assert!(matches!(re.on_failure(now, &mut rng), LoginRetry::After(d) if d <= ms(20000)));
    }
}

fn is_fast(d: Duration) -> bool {
    d >= ms(200) && d < ms(300)
}

#[test]
fn reconnect_two_fast_then_three_per_window() {
    for seed in 0..20 {
        let mut rng = StdRng::seed_from_u64(seed);
        let t0 = Instant::now();
        let mut b = FastBackoff::reconnect();
        let mut now = t0;
        let mut delays = Vec::new();
        for _ in 0..10 {
            let d = b.next_delay(now, &mut rng);
            delays.push(d);
            now += d;
        }
        // Counter starts at 1: two fast retries, then the window opens with an exponential.
        assert!(is_fast(delays[0]) && is_fast(delays[1]), "{delays:?}");
        assert_exponential(delays[1], delays[2], MAX_DURATION);
        // Three fast retries in the new window, then exponential from the last fast one.
        assert!(delays[3..6].iter().all(|&d| is_fast(d)), "{delays:?}");
        assert_exponential(delays[5], delays[6], MAX_DURATION);
        // Still inside the minute: no more fast retries, keep doubling.
        assert!(now - t0 < FAST_RETRY_WINDOW);
        for i in 7..10 {
            assert_exponential(delays[i - 1], delays[i], MAX_DURATION);
        }
    }
}

#[test]
fn reconnect_window_reopens_after_a_minute() {
    let mut rng = StdRng::seed_from_u64(11);
    let t0 = Instant::now();
    let mut b = FastBackoff::reconnect();
    for _ in 0..2 {
        assert!(is_fast(b.next_delay(t0, &mut rng)));
    }
    let opener = b.next_delay(t0, &mut rng); // opens the window at t0
    assert!(!is_fast(opener));
    for _ in 0..3 {
        assert!(is_fast(b.next_delay(t0, &mut rng)));
    }
    // Exhausted inside the window: grows to the cap.
    let mut d = Duration::ZERO;
    for _ in 0..12 {
        d = b.next_delay(t0 + ms(1000), &mut rng);
    }
    assert_eq!(d, MAX_DURATION);
    // After the window: this call reopens it (still exponential), then fast again.
    let later = t0 + FAST_RETRY_WINDOW + ms(1);
    assert_eq!(b.next_delay(later, &mut rng), MAX_DURATION);
    assert!(is_fast(b.next_delay(later, &mut rng)));
}

#[test]
fn success_returns_base_duration_and_resets_consecutive_errors() {
    let mut rng = StdRng::seed_from_u64(5);
    let now = Instant::now();
    let mut b = FastBackoff::first_login();
    b.next_delay(now, &mut rng);
    b.next_delay(now, &mut rng);
    assert_eq!(b.backoff(now, false, &mut rng), DURATION);
    // Next failure doubles the previous delay (1 s), as Go does after a success.
    let d = b.next_delay(now, &mut rng);
    assert!(d >= ms(2000) && d < ms(2200), "{d:?}");
}

#[test]
fn init_duration_if_fail_is_the_first_failure_base() {
    // frpc's heartbeat sender uses these options when signing a ping fails.
    let opts = FastBackoffOptions {
        init_duration_if_fail: Duration::from_secs(1),
        max_duration: Duration::from_secs(30),
        duration: Duration::from_secs(30),
        ..FastBackoffOptions::login(Duration::from_secs(30))
    };
    let mut rng = StdRng::seed_from_u64(9);
    let now = Instant::now();
    let mut b = FastBackoff::new(opts);
    assert_eq!(b.backoff(now, false, &mut rng), Duration::from_secs(30));
    let d = b.next_delay(now, &mut rng);
    assert!(d >= ms(2000) && d < ms(2200), "{d:?}");
}

#[test]
fn jitter_bounds_and_default_factor() {
    let mut rng = StdRng::seed_from_u64(1);
    for _ in 0..100 {
        let d = jitter(ms(100), 0.5, &mut rng);
        assert!(d >= ms(100) && d < ms(150));
        let d = jitter(ms(100), 0.0, &mut rng);
        assert!(d >= ms(100) && d < ms(200));
    }
}
