//! HTTP basic authentication against bcrypt hashes (`basic_auth_users` of
//! the web configuration file), without revealing by timing which users
//! exist: an unknown user costs one bcrypt run against a dummy hash of the
//! same cost, and user names are compared in constant time.

use axum::http::HeaderValue;
use base64::Engine as _;
use std::str::FromStr;
use subtle::{ConditionallySelectable, ConstantTimeEq};

/// bcrypt's own bounds; above 31 the hash format has no room.
const COSTS: std::ops::RangeInclusive<u32> = 4..=31;

#[derive(Clone)]
pub struct BasicAuth {
    /// `(user, bcrypt hash)`.
    users: Vec<(String, String)>,
    /// Checked instead when the user is unknown.
    dummy: String,
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.users.iter().map(|(u, _)| u.as_str()).collect();
        f.debug_struct("BasicAuth").field("users", &names).finish()
    }
}

impl BasicAuth {
    /// Checks every hash; on error returns the user whose hash is bad and why.
    pub fn new(users: Vec<(String, String)>) -> Result<BasicAuth, (String, String)> {
        let mut max_cost = *COSTS.start();
        for (user, hash) in &users {
            let parts = bcrypt::HashParts::from_str(hash)
                .map_err(|e| (user.clone(), format!("not a bcrypt hash: {e}")))?;
            if !COSTS.contains(&parts.get_cost()) {
                return Err((user.clone(), format!("bcrypt cost must be in {COSTS:?}")));
            }
            max_cost = max_cost.max(parts.get_cost());
        }
        // The slowest real hash's cost, so an unknown user takes as long as a known one.
        let dummy = bcrypt::hash("greenplum_segment_exporter: no such user", max_cost)
            .map_err(|e| (String::new(), format!("cannot compute a bcrypt hash: {e}")))?;
        Ok(BasicAuth { users, dummy })
    }

    /// True when `password` is the one of `user`. Takes one bcrypt run
    /// whether or not the user exists.
    pub fn check(&self, user: &[u8], password: &[u8]) -> bool {
        let unknown = self.users.len() as u32;
        let mut index = unknown;
        for (i, (name, _)) in self.users.iter().enumerate() {
            let same = name.as_bytes().ct_eq(user);
            index.conditional_assign(&(i as u32), same);
        }
        let hash = self
            .users
            .get(index as usize)
            .map_or(self.dummy.as_str(), |(_, h)| h.as_str());
        let verified = bcrypt::verify(password, hash).unwrap_or(false);
        verified && index != unknown
    }

    /// Checks an `Authorization: Basic ...` header value.
    pub fn check_header(&self, value: Option<&HeaderValue>) -> bool {
        match value.and_then(credentials) {
            Some((user, password)) => self.check(&user, &password),
            None => false,
        }
    }
}

/// The user and password of a basic `Authorization` header.
fn credentials(value: &HeaderValue) -> Option<(Vec<u8>, Vec<u8>)> {
    let value = value.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    Some((decoded[..colon].to_vec(), decoded[colon + 1..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn auth() -> BasicAuth {
        let hash = bcrypt::hash("right", 8).unwrap();
        BasicAuth::new(vec![("prometheus".into(), hash)]).unwrap()
    }

    fn header(user: &str, password: &str) -> HeaderValue {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        HeaderValue::from_str(&format!("Basic {token}")).unwrap()
    }

    #[test]
    fn only_the_right_pair_passes() {
        let a = auth();
        assert!(a.check_header(Some(&header("prometheus", "right"))));
        assert!(!a.check_header(Some(&header("prometheus", "wrong"))));
        assert!(!a.check_header(Some(&header("nobody", "right"))));
        assert!(!a.check_header(Some(&HeaderValue::from_static("Bearer abc"))));
        assert!(!a.check_header(Some(&HeaderValue::from_static("Basic !!!"))));
        assert!(!a.check_header(None));
    }

    #[test]
    fn bad_hashes_are_refused_naming_the_user() {
        let err = BasicAuth::new(vec![("alice".into(), "plaintext".into())]).unwrap_err();
        assert_eq!(err.0, "alice");
    }

    fn fastest_of_three(f: impl Fn() -> bool) -> Duration {
        (0..3)
            .map(|_| {
                let start = Instant::now();
                assert!(!f());
                start.elapsed()
            })
            .min()
            .unwrap()
    }

    #[test]
    fn an_unknown_user_costs_a_bcrypt_run_too() {
        let a = auth();
        let known = fastest_of_three(|| a.check(b"prometheus", b"wrong"));
        let unknown = fastest_of_three(|| a.check(b"nobody", b"wrong"));
        // Without the dummy run the unknown user would answer in microseconds,
        // a known one in milliseconds (cost 8 is ~256 key expansions).
        assert!(
            unknown * 3 > known,
            "unknown user {unknown:?} vs known user {known:?}"
        );
    }
}
