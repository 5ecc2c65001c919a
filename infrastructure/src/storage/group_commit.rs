//! Group commit: writes that arrive while others are being written wait, and the next write
//! takes them together — one statement or one transaction, one commit, for many callers.
//!
//! A caller puts its item in the queue ([`GroupQueue::push`]). If fewer than the queue's
//! writers are at work, the caller gets a [`Writer`] and the first group, and hands both to a
//! task of its own (so that a caller that gives up does not cut short the others' writes); the
//! task writes a group, asks for the next and stops when nothing waits ([`Writer::write_all`]). Each
//! item carries its caller's answer channel: the caller waits on it, not on the task.
//!
//! Used by the inbox (its rows, `inbox::Inbox::record`) and by SQLite's one writer (appends,
//! `SqliteStorage::append_together`).

use std::sync::{Arc, Mutex, PoisonError};

#[derive(Debug)]
pub(crate) struct GroupQueue<T> {
    state: Arc<Mutex<State<T>>>,
    /// At most this many items in one group.
    per_group: usize,
}

impl<T> Clone for GroupQueue<T> {
    fn clone(&self) -> Self {
        GroupQueue { state: self.state.clone(), per_group: self.per_group }
    }
}

#[derive(Debug)]
struct State<T> {
    waiting: Vec<T>,
    /// Writers at work, and how many may be.
    writing: usize,
    writers: usize,
}

impl<T> State<T> {
    /// The next group, oldest first.
    fn take(&mut self, per_group: usize) -> Vec<T> {
        let n = self.waiting.len().min(per_group);
        self.waiting.drain(..n).collect()
    }
}

impl<T> GroupQueue<T> {
    /// A queue written by at most `writers` writers at once, `per_group` items at a time.
    pub(crate) fn new(writers: usize, per_group: usize) -> Self {
        let state = State { waiting: Vec::new(), writing: 0, writers: writers.max(1) };
        GroupQueue { state: Arc::new(Mutex::new(state)), per_group: per_group.max(1) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether no writer is at work and nothing waits (a caller may then write on its own,
    /// with nobody to share a commit with).
    pub(crate) fn is_idle(&self) -> bool {
        let state = self.lock();
        state.writing == 0 && state.waiting.is_empty()
    }

    /// Queues `item`. When a writer's place is free, returns it with the first group to write
    /// (which holds `item`); otherwise a writer at work takes `item` with its next group.
    pub(crate) fn push(&self, item: T) -> Option<(Writer<T>, Vec<T>)> {
        let mut state = self.lock();
        state.waiting.push(item);
        if state.writing >= state.writers {
            return None;
        }
        state.writing += 1;
        let group = state.take(self.per_group);
        Some((Writer { queue: self.clone(), done: false }, group))
    }
}

/// A writer's place in its queue: given back when nothing waits, or when the writer is dropped
/// unfinished (a panic: what still waits is dropped too, so that its callers, seeing their
/// answer channels closed, are not left waiting for a writer that is gone).
#[derive(Debug)]
pub(crate) struct Writer<T> {
    queue: GroupQueue<T>,
    done: bool,
}

impl<T> Writer<T> {
    /// Writes `group` with `write`, then each group queued meanwhile, until nothing waits: the
    /// body of a writing task.
    pub(crate) async fn write_all<F: Future<Output = ()>>(
        mut self,
        mut group: Vec<T>,
        mut write: impl FnMut(Vec<T>) -> F,
    ) {
        loop {
            write(group).await;
            match self.next() {
                Some(next) => group = next,
                None => return,
            }
        }
    }

    /// The next group to write, or `None` when nothing waits (this writer's place is given
    /// back in the same step, so an item queued just after finds a free place).
    pub(crate) fn next(&mut self) -> Option<Vec<T>> {
        let mut state = self.queue.lock();
        if state.waiting.is_empty() {
            state.writing -= 1;
            self.done = true;
            return None;
        }
        Some(state.take(self.queue.per_group))
    }
}

impl<T> Drop for Writer<T> {
    fn drop(&mut self) {
        if !self.done {
            let mut state = self.queue.lock();
            state.writing -= 1;
            state.waiting.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_pushed_while_the_writers_are_busy_wait_for_their_next_group() {
        let queue = GroupQueue::new(1, 2);
        let (mut writer, first) = queue.push(1).unwrap();
        assert_eq!(first, [1]);
        // The one writer is busy: these wait.
        assert!(queue.push(2).is_none());
        assert!(queue.push(3).is_none());
        assert!(queue.push(4).is_none());
        assert_eq!(writer.next(), Some(vec![2, 3]), "at most two per group, oldest first");
        assert_eq!(writer.next(), Some(vec![4]));
        assert_eq!(writer.next(), None, "nothing waits: the place is given back");
        let (_writer, group) = queue.push(5).unwrap();
        assert_eq!(group, [5], "a free place is taken at once");
    }

    #[test]
    fn a_writer_dropped_unfinished_gives_its_place_back_and_drops_what_waits() {
        let queue = GroupQueue::new(2, 8);
        let (first, _) = queue.push(1).unwrap();
        let (_second, _) = queue.push(2).unwrap();
        assert!(queue.push(3).is_none(), "both places taken");
        drop(first);
        assert!(queue.lock().waiting.is_empty(), "what waited is dropped with the writer");
        let (_, group) = queue.push(4).unwrap();
        assert_eq!(group, [4]);
    }
}
