//! Regions, their round-trip times, and the seeded placement of nodes.
//!
//! Inter-region round-trip times are the measured averages between AWS
//! regions published as "Latency Between AWS Global Regions" (tabulated at
//! <https://acomputerscientistlearnsaws.blogspot.com/2017/04/aws-regions.html>);
//! within a region we use 1 ms, between the 0.25 ms and 3.37 ms inter-zone
//! extremes measured at <https://www.xkyle.com/Measuring-AWS-Region-and-AZ-Latency/>.
//! A link's one-way delay is half the round trip.

use std::time::Duration;

use crate::link::LinkModel;

/// The regions nodes are placed in.
pub const REGIONS: [&str; 6] = [
    "us-east (N. Virginia)",
    "us-west (Oregon)",
    "eu-west (Ireland)",
    "eu-central (Frankfurt)",
    "ap-northeast (Tokyo)",
    "ap-southeast (Singapore)",
];

/// Round-trip times in ms between [`REGIONS`] (symmetric; the diagonal is
/// the in-region figure).
pub const RTT_MS: [[f64; 6]; 6] = [
    [1.0, 86.98, 80.55, 88.66, 145.3, 216.7],
    [86.98, 1.0, 137.0, 159.5, 89.1, 161.4],
    [80.55, 137.0, 1.0, 19.56, 212.4, 239.0],
    [88.66, 159.5, 19.56, 1.0, 236.5, 325.9],
    [145.3, 89.1, 212.4, 236.5, 1.0, 73.79],
    [216.7, 161.4, 239.0, 325.9, 73.79, 1.0],
];

/// A small seeded generator (SplitMix64): the same seed gives the same
/// topology, placement and jitter on every machine.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Nodes placed in regions, with jitter and bandwidth.
#[derive(Debug, Clone)]
pub struct Placement {
    /// Region of each node.
    pub region: Vec<usize>,
    /// Jitter: each chunk gets up to this fraction of the one-way delay on top.
    pub jitter: f64,
    /// Upload bandwidth of each node, bits per second.
    pub upload_bps: Vec<u64>,
    seed: u64,
}

impl Placement {
    /// `nodes` nodes spread round-robin over the regions from a seeded
    /// shuffle, each with `upload_mbps`.
    pub fn new(nodes: usize, seed: u64, jitter: f64, upload_mbps: u64) -> Self {
        let mut rng = Rng::new(seed);
        let mut region: Vec<usize> = (0..nodes).map(|i| i % REGIONS.len()).collect();
        for i in (1..region.len()).rev() {
            let j = rng.below(i + 1);
            region.swap(i, j);
        }
        Self {
            region,
            jitter,
            upload_bps: vec![upload_mbps.saturating_mul(1_000_000); nodes],
            seed,
        }
    }

    /// One-way delay between two nodes, in ms.
    pub fn one_way_ms(&self, a: usize, b: usize) -> f64 {
        match (self.region.get(a), self.region.get(b)) {
            (Some(&ra), Some(&rb)) => RTT_MS[ra][rb] / 2.0,
            _ => 0.0,
        }
    }
}

impl LinkModel for Placement {
    fn delay(&self, from: usize, to: usize) -> Duration {
        Duration::from_secs_f64(self.one_way_ms(from, to) / 1000.0)
    }

    fn jitter(&self, from: usize, to: usize, sequence: u64) -> Duration {
        let r = mix(self.seed ^ sequence.wrapping_mul(0x2545_F491_4F6C_DD1D)) >> 11;
        let unit = r as f64 / (1u64 << 53) as f64;
        Duration::from_secs_f64(self.one_way_ms(from, to) * self.jitter * unit / 1000.0)
    }

    fn upload_bps(&self, node: usize) -> u64 {
        self.upload_bps.get(node).copied().unwrap_or(100_000_000)
    }
}

/// Shortest-path one-way latency (ms) from `from` to every node over the
/// direct links of the matrix (Floyd–Warshall is overkill: the matrix
/// nearly obeys the triangle inequality, so one relay hop is enough to check).
pub fn shortest_paths(placement: &Placement, from: usize) -> Vec<f64> {
    let n = placement.region.len();
    (0..n)
        .map(|to| {
            let direct = placement.one_way_ms(from, to);
            (0..n)
                .map(|via| placement.one_way_ms(from, via) + placement.one_way_ms(via, to))
                .fold(direct, f64::min)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_matrix_is_symmetric_and_placement_is_seeded() {
        for (a, row) in RTT_MS.iter().enumerate() {
            for (b, rtt) in row.iter().enumerate() {
                assert_eq!(*rtt, RTT_MS[b][a]);
            }
        }
        let one = Placement::new(50, 7, 0.1, 100);
        let two = Placement::new(50, 7, 0.1, 100);
        let other = Placement::new(50, 8, 0.1, 100);
        assert_eq!(one.region, two.region);
        assert_ne!(one.region, other.region);
        // Every region gets nodes.
        for r in 0..REGIONS.len() {
            assert!(one.region.contains(&r));
        }
        let paths = shortest_paths(&one, 0);
        assert_eq!(paths[0], 0.5);
        assert!(paths.iter().all(|ms| *ms <= 326.0 / 2.0));
    }
}
