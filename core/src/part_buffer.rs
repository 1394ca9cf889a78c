//! Memory for multipart parts: anonymous mappings, so a finished part goes
//! back to the OS at once. malloc would keep multi-MiB blocks in per-thread
//! arenas, and the process's RSS would keep the high-water mark of every
//! tokio worker.

use bytes::Bytes;
use memmap2::MmapMut;

pub(crate) struct PartBuffer {
    map: MmapMut,
    len: usize,
}

impl PartBuffer {
    /// Reserves `capacity` bytes; pages cost memory only once written.
    pub(crate) fn new(capacity: usize) -> std::io::Result<Self> {
        Ok(PartBuffer { map: MmapMut::map_anon(capacity.max(1))?, len: 0 })
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn remaining(&self) -> usize {
        self.map.len() - self.len
    }

    /// Appends as much of `data` as fits; returns how much it took.
    pub(crate) fn fill(&mut self, data: &[u8]) -> usize {
        let n = self.remaining().min(data.len());
        self.map[self.len..self.len + n].copy_from_slice(&data[..n]);
        self.len += n;
        n
    }

    pub(crate) fn freeze(self) -> Bytes {
        Bytes::from_owner(Filled(self))
    }
}

struct Filled(PartBuffer);

impl AsRef<[u8]> for Filled {
    fn as_ref(&self) -> &[u8] {
        &self.0.map[..self.0.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_up_to_capacity() {
        let mut p = PartBuffer::new(5).unwrap();
        assert_eq!(p.fill(b"abc"), 3);
        assert_eq!(p.fill(b"defg"), 2);
        assert_eq!(p.remaining(), 0);
        assert_eq!(&p.freeze()[..], b"abcde");
    }
}
