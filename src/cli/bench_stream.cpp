#include "cli/bench_stream.h"

#include <cstdio>

#include "engine/budget.h"
#include "engine/engine.h"
#include "engine/memory_plan.h"
#include "engine/probes.h"

namespace frugal::cli {
namespace {

double ratio(double a, double b) { return b > 0 ? a / b : 0.0; }

}  // namespace

StreamFigures stream_figures(const v4::DeepSeekV4Config& c, const stream::ExpertCache& cache,
                             const std::vector<StreamRep>& reps) {
  StreamFigures f;
  f.slots = cache.slots();
  f.slot_bytes = cache.slot_bytes();
  f.pinned = cache.pinned();
  f.direct = cache.direct_io();
  if (reps.empty()) return f;
  std::vector<double> dh, dch, ph, hint, used, disk_bytes, unused_bytes, embed_bytes, ram_bytes,
      disk_gbps, replay, probe, frac, frac_random, pred, wait;
  for (const StreamRep& r : reps) {
    dh.push_back(r.decode.hit_rate());
    dch.push_back(r.decode.cache_hit_rate());
    ph.push_back(r.prefill.hit_rate());
    hint.push_back(r.decode.hint_rate());
    used.push_back(ratio(static_cast<double>(r.decode.prefetch_used),
                         static_cast<double>(r.decode.prefetch_reads)));
    const double tokens = static_cast<double>(std::max<int64_t>(r.gen, 1));
    const double disk = static_cast<double>(r.decode.bytes_read) / tokens;
    // The roofline counts the bytes the decode needed: a prefetch no layer asked for took disk
    // time, but a decode at the roofline would not have read it.
    const double needed = r.decode.needed_bytes() / tokens;
    // RAM bytes: every weight a decode step multiplies with is read from memory (a streamed
    // expert from its slot, once its read is done).
    const double ram = static_cast<double>(engine::decode_weight_bytes_per_token(c));
    const engine::DecodePrediction p =
        engine::predict_decode(c, r.decode.cache_hit_rate(), r.read_gbps, r.disk_gbps);
    disk_bytes.push_back(disk);
    unused_bytes.push_back(disk - needed);
    embed_bytes.push_back(static_cast<double>(r.embed_bytes) / tokens);
    ram_bytes.push_back(ram);
    disk_gbps.push_back(disk * r.decode_tps / 1e9);
    replay.push_back(r.replay_gbps);
    probe.push_back(r.disk_gbps);
    // A token's time at the roofline for a disk rate (a decode that read nothing: RAM alone).
    auto roof = [&](double disk_rate) {
      return std::max(disk_rate > 0 ? needed / (disk_rate * 1e9) : 0.0, ram / (r.read_gbps * 1e9));
    };
    if (r.read_gbps > 0 && r.decode_tps > 0) {
      frac.push_back(roof(r.replay_gbps) * r.decode_tps);
      if (r.disk_gbps > 0) frac_random.push_back(roof(r.disk_gbps) * r.decode_tps);
    }
    if (r.read_gbps > 0 && r.disk_gbps > 0 && r.decode_tps > 0) pred.push_back(p.overlapped_tok_s);
    wait.push_back(ratio(r.decode.wait_seconds, tokens / std::max(r.decode_tps, 1e-9)));
  }
  f.decode_hit_rate = engine::median(dh);
  f.decode_cache_hit_rate = engine::median(dch);
  f.prefill_hit_rate = engine::median(ph);
  f.hint_rate = engine::median(hint);
  f.prefetch_used = engine::median(used);
  f.disk_bytes_per_token = engine::median(disk_bytes);
  f.unused_prefetch_bytes_per_token = engine::median(unused_bytes);
  f.embed_bytes_per_token = engine::median(embed_bytes);
  f.ram_bytes_per_token = engine::median(ram_bytes);
  f.disk_gbps = engine::median(disk_gbps);
  f.replay_gbps = engine::median(replay);
  f.disk_probe_gbps = engine::median(probe);
  f.roofline_fraction = frac.empty() ? 0.0 : engine::median(frac);
  f.roofline_fraction_random = frac_random.empty() ? 0.0 : engine::median(frac_random);
  f.predicted_tps = pred.empty() ? 0.0 : engine::median(pred);
  f.wait_share = engine::median(wait);
  return f;
}

std::string stream_text(const StreamFigures& f, double decode_tps) {
  char buf[1536];
  std::snprintf(
      buf, sizeof(buf),
      "streamed experts: %lld slots of %s (%lld pinned), %s reads\n"
      "  hit rate: decode %.1f %% (cache %.1f %%, the rest prefetched), prefill %.1f %%; "
      "next-layer "
      "guess right %.1f %%, prefetched experts used %.1f %%\n"
      "  decode: disk %s/token (%s of it prefetches no layer asked for) -> %.2f GB/s (same "
      "run: its reads replayed %.2f GB/s, random extents %.2f GB/s), and %s/token of embedding "
      "rows; RAM %s/token; waiting for reads %.1f %% of the time\n"
      "  roofline max(disk, RAM): decode at %.1f %% of it (%.1f %% with the random-extent "
      "probe); predicted %.2f tok/s, measured / predicted %.2f\n",
      static_cast<long long>(f.slots), engine::format_bytes(f.slot_bytes).c_str(),
      static_cast<long long>(f.pinned), f.direct ? "O_DIRECT" : "buffered", 100 * f.decode_hit_rate,
      100 * f.decode_cache_hit_rate, 100 * f.prefill_hit_rate, 100 * f.hint_rate,
      100 * f.prefetch_used,
      engine::format_bytes(static_cast<uint64_t>(f.disk_bytes_per_token)).c_str(),
      engine::format_bytes(static_cast<uint64_t>(f.unused_prefetch_bytes_per_token)).c_str(),
      f.disk_gbps, f.replay_gbps, f.disk_probe_gbps,
      engine::format_bytes(static_cast<uint64_t>(f.embed_bytes_per_token)).c_str(),
      engine::format_bytes(static_cast<uint64_t>(f.ram_bytes_per_token)).c_str(),
      100 * f.wait_share, 100 * f.roofline_fraction, 100 * f.roofline_fraction_random,
      f.predicted_tps, ratio(decode_tps, f.predicted_tps));
  return buf;
}

nlohmann::json stream_json(const StreamFigures& f, double decode_tps) {
  return {{"slots", f.slots},
          {"slot_bytes", f.slot_bytes},
          {"pinned", f.pinned},
          {"direct_io", f.direct},
          {"decode_hit_rate", f.decode_hit_rate},
          {"decode_cache_hit_rate", f.decode_cache_hit_rate},
          {"prefill_hit_rate", f.prefill_hit_rate},
          {"next_layer_guess_rate", f.hint_rate},
          {"prefetched_used_rate", f.prefetch_used},
          {"disk_bytes_per_token", f.disk_bytes_per_token},
          {"unused_prefetch_bytes_per_token", f.unused_prefetch_bytes_per_token},
          {"embed_disk_bytes_per_token", f.embed_bytes_per_token},
          {"ram_bytes_per_token", f.ram_bytes_per_token},
          {"disk_gbps", f.disk_gbps},
          {"replay_gbps", f.replay_gbps},
          {"disk_probe_gbps", f.disk_probe_gbps},
          {"roofline_fraction", f.roofline_fraction},
          {"roofline_fraction_random_probe", f.roofline_fraction_random},
          {"predicted_tokens_per_s", f.predicted_tps},
          {"measured_over_predicted", ratio(decode_tps, f.predicted_tps)},
          {"read_wait_share", f.wait_share}};
}

}  // namespace frugal::cli
