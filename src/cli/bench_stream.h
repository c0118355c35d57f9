// frugal bench with streamed experts (--mem-budget, or a model larger than the memory available):
// the expert cache's figures per phase and the roofline they imply, measured in the same run.
//
// Per repetition, the cache statistics of the prefill and of the decode are taken apart, and the
// decode is followed by two disk probes and the RAM read probe:
//   replay: the decode's own expert reads performed again (ExpertCache::replay_reads: the same
//     files, offsets and lengths, as many in flight as the cache's I/O threads, nothing else to
//     do), i.e. what the disk gives those reads when it is never left idle;
//   random extents: an O_DIRECT pass over the model's own files (engine/disk_probe.h).
// The replay is the roofline's disk rate: where a disk's speed depends on what was read before
// (a VM host caching the disk image, a drive's own cache), it meets the state the decode's reads
// met, which a pass over all the files does not (on such a host the expert reads, which revisit
// a hot set, ran faster than that probe: fractions above 1). Both are reported, each with its
// fraction. Reported (medians over the repetitions):
//   hit rate (decode, prefill): experts found in memory (or already being read) when a layer asked,
//     and the part of it the cache held before any prefetch (cache hit rate: what memory saves);
//   disk bytes per decode token: what the expert reads brought in, prefetches included, and the
//     part of it that prefetches no layer asked for read (ExpertCacheStats::unused_prefetches);
//   achieved disk GB/s = disk bytes per token x decode tok/s, against the probes;
//   roofline: a token cannot take less than max(needed disk bytes / replay GB/s, RAM bytes /
//     read probe), needed = the disk bytes less the unused prefetches' (a decode that reads for
//     nothing does not move its own roofline), RAM bytes = decode_weight_bytes_per_token (every
//     weight a step multiplies with is read from memory, a streamed expert from its slot);
//     decode fraction = roofline time / measured time;
//   prediction: engine::predict_decode at the measured cache hit rate and probes (overlapped), and
//     the measured decode over it;
//   next-layer guess: the share of a hinted block's requested experts that were in the hint.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/v4/config.h"
#include "stream/expert_cache.h"

namespace frugal::cli {

struct StreamRep {
  stream::ExpertCacheStats prefill, decode;
  int64_t gen = 0;
  uint64_t embed_bytes = 0;  // the decode's embedding rows read from disk (stream::EmbedRows)
  double decode_tps = 0;
  double replay_gbps = 0;  // this repetition's decode reads replayed right after it
  double disk_gbps = 0;    // the probe pass after this repetition
  double read_gbps = 0;    // the RAM probe pass after this repetition (0: none)
};

struct StreamFigures {
  int64_t slots = 0;
  uint64_t slot_bytes = 0;
  int64_t pinned = 0;
  bool direct = true;
  double decode_hit_rate = 0, prefill_hit_rate = 0;
  double decode_cache_hit_rate = 0;  // without the prefetched experts
  double hint_rate = 0;              // next-layer guess
  double prefetch_used = 0;          // prefetched experts a layer then asked for / prefetch reads
  double disk_bytes_per_token = 0;   // the expert reads
  double unused_prefetch_bytes_per_token = 0;  // of those, prefetches no layer asked for
  double embed_bytes_per_token = 0;  // the embedding rows (pages read; not in the roofline)
  double ram_bytes_per_token = 0;
  double disk_gbps = 0;          // achieved in decode
  double replay_gbps = 0;        // the decode's own reads replayed (the roofline's disk rate)
  double disk_probe_gbps = 0;    // random extents over the files
  double roofline_fraction = 0;  // against the replay
  double roofline_fraction_random = 0;  // the same against the random-extent probe
  double predicted_tps = 0;             // overlapped prediction at the measured hit rate
  double wait_share = 0;                // decode time the compute thread waited for reads
};

StreamFigures stream_figures(const v4::DeepSeekV4Config& c, const stream::ExpertCache& cache,
                             const std::vector<StreamRep>& reps);
std::string stream_text(const StreamFigures& f, double decode_tps);
nlohmann::json stream_json(const StreamFigures& f, double decode_tps);

}  // namespace frugal::cli
