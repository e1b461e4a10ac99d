//! A set of a few elements kept as a sorted `Vec`. The index groups Routes by FQDN and Services by
//! FQDN, and almost every group has one member: a `BTreeMap` leaf is allocated for eleven (some 300 to
//! 800 bytes), this `Vec` for exactly its members. Lookups are binary searches.

/// What an element is ordered and found by.
pub(crate) trait Named {
    fn name(&self) -> &str;
}

impl Named for std::sync::Arc<str> {
    fn name(&self) -> &str {
        self
    }
}

#[derive(Debug)]
pub(crate) struct SmallSet<T>(Vec<T>);

impl<T> Default for SmallSet<T> {
    fn default() -> Self {
        SmallSet(Vec::new())
    }
}

impl<T: Named> SmallSet<T> {
    fn find(&self, name: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|e| e.name().cmp(name))
    }

    /// Adds `element`, replacing the one of the same name.
    pub fn insert(&mut self, element: T) {
        match self.find(element.name()) {
            Ok(at) => self.0[at] = element,
            Err(at) => {
                // Grow by one: a Vec's first allocation is for four.
                self.0.reserve_exact(1);
                self.0.insert(at, element)
            }
        }
    }

    pub fn get(&self, name: &str) -> Option<&T> {
        self.find(name).ok().map(|at| &self.0[at])
    }

    pub fn remove(&mut self, name: &str) -> Option<T> {
        let at = self.find(name).ok()?;
        let removed = self.0.remove(at);
        if self.0.is_empty() {
            // Give the buffer back: an emptied group is dropped, but one that shrinks keeps its size.
            self.0.shrink_to_fit();
        }
        Some(removed)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// In name order.
    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.0.iter()
    }
}

impl<'a, T> IntoIterator for &'a SmallSet<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_by_name_with_replace_and_remove() {
        let mut set = SmallSet::default();
        for n in ["b", "c", "a", "b"] {
            set.insert(std::sync::Arc::<str>::from(n));
        }
        let names = |set: &SmallSet<std::sync::Arc<str>>| {
            set.iter().map(|n| n.to_string()).collect::<Vec<_>>()
        };
        assert_eq!(names(&set), ["a", "b", "c"]);
        assert_eq!(set.get("b").map(|n| &**n), Some("b"));
        assert_eq!(set.remove("b").as_deref(), Some("b"));
        assert_eq!(set.remove("b"), None);
        assert_eq!(set.get("b"), None);
        assert_eq!(names(&set), ["a", "c"]);
        set.remove("a");
        set.remove("c");
        assert!(set.is_empty());
    }
}
