//! The fetching side of a fetch session (Kafka's `FetchSessionHandler`), for this broker's
//! replica fetchers: what the next Fetch to one leader carries, given the partitions and
//! positions wanted now and what the leader's session already holds.
//!
//! With no session, a Fetch is full (epoch 0, naming the stale session id, if any, so the
//! leader closes it) and opens one. With a session, a Fetch carries the session id and the
//! next epoch, only the partitions added or whose position changed, and the ones to forget.
//! Any failure (a session error, a lost connection, a request dropped unanswered) forgets
//! the session: the leader may have moved its epoch on, so the next Fetch starts over.

use std::collections::HashMap;

use super::{next_epoch, FetchPosition, SessionPartition, INITIAL_EPOCH, INVALID_SESSION_ID};

/// What the next Fetch carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextFetch {
    pub session_id: i32,
    pub epoch: i32,
    /// The partitions to list: all of them for a full fetch, else what changed.
    pub to_send: Vec<(SessionPartition, FetchPosition)>,
    pub forgotten: Vec<SessionPartition>,
}

#[derive(Debug, Default)]
pub struct FetchSessionHandler {
    /// The session and the epoch its next Fetch carries; `None`: the next Fetch is full.
    session: Option<(i32, i32)>,
    /// A session to close with the next full Fetch.
    stale: Option<i32>,
    /// What the leader's session holds, as of the last Fetch built.
    sent: HashMap<SessionPartition, FetchPosition>,
}

impl FetchSessionHandler {
    /// The next Fetch for `wanted` (in the order to list them); records it as sent.
    pub fn build(&mut self, wanted: &[(SessionPartition, FetchPosition)]) -> NextFetch {
        let next = match self.session {
            Some((session_id, epoch)) => {
                let to_send = wanted
                    .iter()
                    .filter(|(key, position)| self.sent.get(key) != Some(position))
                    .cloned()
                    .collect();
                let mut forgotten: Vec<_> = self
                    .sent
                    .keys()
                    .filter(|key| !wanted.iter().any(|(k, _)| k == *key))
                    .cloned()
                    .collect();
                forgotten.sort();
                NextFetch {
                    session_id,
                    epoch,
                    to_send,
                    forgotten,
                }
            }
            None => NextFetch {
                session_id: self.stale.unwrap_or(INVALID_SESSION_ID),
                epoch: INITIAL_EPOCH,
                to_send: wanted.to_vec(),
                forgotten: Vec::new(),
            },
        };
        self.sent = wanted.iter().cloned().collect();
        next
    }

    /// The leader answered the last Fetch built without a top-level error, with
    /// `session_id` (0: it keeps no session for us; the next Fetch tries again).
    pub fn answered(&mut self, session_id: i32) {
        self.stale = None;
        self.session = match self.session {
            _ if session_id == INVALID_SESSION_ID => None,
            Some((id, epoch)) if id == session_id => Some((id, next_epoch(epoch))),
            _ => Some((session_id, next_epoch(INITIAL_EPOCH))),
        };
        if self.session.is_none() {
            self.sent.clear();
        }
    }

    /// The last Fetch failed or went unanswered: start over with a full Fetch.
    pub fn reset(&mut self) {
        if let Some((id, _)) = self.session.take() {
            self.stale = Some(id);
        }
        self.sent.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::super::TopicRef;
    use super::*;

    fn tp(partition: i32) -> SessionPartition {
        SessionPartition {
            topic: TopicRef::Name("t".into()),
            partition,
        }
    }

    fn at(offset: i64) -> FetchPosition {
        FetchPosition {
            fetch_offset: offset,
            partition_max_bytes: 1 << 20,
            log_start_offset: 0,
            current_leader_epoch: 3,
            last_fetched_epoch: -1,
        }
    }

    #[test]
    fn a_session_sends_only_what_changed_and_forgets_what_is_gone() {
        let mut h = FetchSessionHandler::default();
        let full = h.build(&[(tp(0), at(5)), (tp(1), at(7))]);
        assert_eq!((full.session_id, full.epoch, full.to_send.len()), (0, 0, 2));
        h.answered(42);
        // (wanted, expected epoch, expected to_send, expected forgotten)
        let steps = [
            (vec![(tp(0), at(5)), (tp(1), at(7))], 1, vec![], vec![]),
            (
                vec![(tp(0), at(9)), (tp(1), at(7))],
                2,
                vec![(tp(0), at(9))],
                vec![],
            ),
            (
                vec![(tp(0), at(9)), (tp(2), at(0))],
                3,
                vec![(tp(2), at(0))],
                vec![tp(1)],
            ),
        ];
        for (wanted, epoch, to_send, forgotten) in steps {
            let next = h.build(&wanted);
            assert_eq!(next.session_id, 42);
            assert_eq!(next.epoch, epoch);
            assert_eq!(next.to_send, to_send, "epoch {epoch}");
            assert_eq!(next.forgotten, forgotten, "epoch {epoch}");
            h.answered(42);
        }
    }

    #[test]
    fn a_failure_starts_over_with_a_full_fetch_closing_the_old_session() {
        let mut h = FetchSessionHandler::default();
        h.build(&[(tp(0), at(5))]);
        h.answered(42);
        h.build(&[(tp(0), at(6))]);
        h.reset();
        let next = h.build(&[(tp(0), at(6))]);
        assert_eq!((next.session_id, next.epoch), (42, 0));
        assert_eq!(next.to_send, vec![(tp(0), at(6))]);
        h.answered(77);
        let next = h.build(&[(tp(0), at(6))]);
        assert_eq!((next.session_id, next.epoch, next.to_send), (77, 1, vec![]));
    }

    #[test]
    fn a_leader_without_a_slot_gets_full_fetches() {
        let mut h = FetchSessionHandler::default();
        for _ in 0..3 {
            let next = h.build(&[(tp(0), at(5))]);
            assert_eq!((next.session_id, next.epoch, next.to_send.len()), (0, 0, 1));
            h.answered(0);
        }
    }
}
