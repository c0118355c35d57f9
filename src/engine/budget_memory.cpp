// memory_available_for_budget (engine/budget.h): MemAvailable and the memory cgroup's headroom,
// read from /proc and the cgroup file systems.
#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "engine/budget.h"

namespace frugal::engine {
namespace {

// A limit at or above this is "no limit": v1 writes PAGE_COUNTER_MAX pages (2^63 - 4096) there.
constexpr uint64_t kNoLimit = uint64_t{1} << 60;

bool read_text(const std::string& path, std::string* out) {
  std::ifstream f(path);
  if (!f) return false;
  std::stringstream ss;
  ss << f.rdbuf();
  *out = ss.str();
  return true;
}

// The first number of a file ("max" and unreadable files give false).
bool read_u64(const std::string& path, uint64_t* out) {
  std::string t;
  if (!read_text(path, &t)) return false;
  size_t i = 0;
  while (i < t.size() && (t[i] == ' ' || t[i] == '\n')) ++i;
  if (i == t.size() || t[i] < '0' || t[i] > '9') return false;
  uint64_t v = 0;
  for (; i < t.size() && t[i] >= '0' && t[i] <= '9'; ++i) {
    const uint64_t d = static_cast<uint64_t>(t[i] - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = v;
  return true;
}

// "key value" lines (memory.stat, /proc/meminfo with a trailing ':' on the key).
bool stat_field(const std::string& text, const std::string& key, uint64_t* out) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string k;
    uint64_t v = 0;
    if (ls >> k >> v && k == key) {
      *out = v;
      return true;
    }
  }
  return false;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  std::string cur;
  std::istringstream in(s);
  while (std::getline(in, cur, sep)) parts.push_back(cur);
  if (!s.empty() && s.back() == sep) parts.emplace_back();
  return parts;
}

// mountinfo escapes ' ', '\t', '\n' and '\\' as \ooo.
std::string unescape_octal(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      const std::string o = s.substr(i + 1, 3);
      if (std::all_of(o.begin(), o.end(), [](char c) { return c >= '0' && c <= '7'; })) {
        out.push_back(static_cast<char>(std::stoi(o, nullptr, 8)));
        i += 3;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

struct CgroupMount {
  std::string root;         // the hierarchy path mounted (field 4)
  std::string mount_point;  // where (field 5)
};

// The mounts of the v2 hierarchy and of the v1 hierarchy carrying the memory controller.
void find_mounts(const std::string& mountinfo, std::vector<CgroupMount>* v1,
                 std::vector<CgroupMount>* v2) {
  std::istringstream in(mountinfo);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::vector<std::string> f;
    std::string w;
    while (ls >> w) f.push_back(w);
    const auto dash = std::find(f.begin(), f.end(), "-");
    if (f.size() < 5 || dash == f.end() || dash + 1 == f.end()) continue;
    const std::string& fstype = *(dash + 1);
    const std::string super = dash + 3 < f.end() ? *(dash + 3) : "";
    CgroupMount m{unescape_octal(f[3]), unescape_octal(f[4])};
    if (fstype == "cgroup2") {
      v2->push_back(m);
    } else if (fstype == "cgroup") {
      const std::vector<std::string> opts = split(super, ',');
      if (std::find(opts.begin(), opts.end(), "memory") != opts.end()) v1->push_back(m);
    }
  }
}

// The directory of `path` (a hierarchy path from /proc/self/cgroup) under mount `m`, or "" when
// the mount does not show it.
std::string group_dir(const CgroupMount& m, const std::string& path) {
  std::string rel;
  if (m.root == "/") {
    rel = path;
  } else if (path.rfind(m.root, 0) == 0 &&
             (path.size() == m.root.size() || path[m.root.size()] == '/')) {
    rel = path.substr(m.root.size());
  } else {
    rel = "/";  // a cgroup namespace: the process sees its own group as the mount's root
  }
  if (rel.empty() || rel == "/") return m.mount_point;
  return m.mount_point + rel;
}

// The tightest headroom over the groups from `dir` up to `top`, into `best`.
void walk_up(const std::string& root, std::string dir, const std::string& top, int version,
             MemoryAvailability* best, uint64_t* best_headroom) {
  const char* limit_file = version == 2 ? "/memory.max" : "/memory.limit_in_bytes";
  const char* usage_file = version == 2 ? "/memory.current" : "/memory.usage_in_bytes";
  const char* inactive_key = version == 2 ? "inactive_file" : "total_inactive_file";
  for (;;) {
    uint64_t limit = 0, usage = 0;
    if (read_u64(root + dir + limit_file, &limit) && limit < kNoLimit &&
        read_u64(root + dir + usage_file, &usage)) {
      std::string stat;
      uint64_t inactive = 0;
      if (read_text(root + dir + "/memory.stat", &stat)) stat_field(stat, inactive_key, &inactive);
      usage -= std::min(usage, inactive);
      const uint64_t headroom = limit - std::min(limit, usage);
      if (best->cgroup_version == 0 || headroom < *best_headroom) {
        best->cgroup_version = version;
        best->cgroup_dir = dir;
        best->cgroup_limit = limit;
        best->cgroup_usage = usage;
        *best_headroom = headroom;
      }
    }
    if (dir.size() <= top.size()) break;
    const size_t slash = dir.rfind('/');
    dir = slash == std::string::npos || slash < top.size() ? top : dir.substr(0, slash);
  }
}

}  // namespace

uint64_t MemoryAvailability::available() const {
  uint64_t a = mem_available;
  if (cgroup_version != 0) {
    const uint64_t headroom = cgroup_limit - std::min(cgroup_limit, cgroup_usage);
    a = a == 0 ? headroom : std::min(a, headroom);
  }
  return a;
}

MemoryAvailability probe_memory_availability(const std::string& root) {
  MemoryAvailability m;
  std::string text;
  uint64_t kib = 0;
  if (read_text(root + "/proc/meminfo", &text) && stat_field(text, "MemAvailable:", &kib)) {
    m.mem_available = kib * 1024;
  }
  std::string cgroups, mountinfo;
  if (!read_text(root + "/proc/self/cgroup", &cgroups) ||
      !read_text(root + "/proc/self/mountinfo", &mountinfo)) {
    return m;
  }
  std::vector<CgroupMount> v1, v2;
  find_mounts(mountinfo, &v1, &v2);
  uint64_t headroom = 0;
  std::istringstream in(cgroups);
  std::string line;
  while (std::getline(in, line)) {
    // "hierarchy-id:controller-list:path"; the path may itself hold ':'.
    const size_t a = line.find(':');
    const size_t b = a == std::string::npos ? a : line.find(':', a + 1);
    if (b == std::string::npos) continue;
    const std::string controllers = line.substr(a + 1, b - a - 1);
    const std::string path = line.substr(b + 1);
    const std::vector<std::string> names = split(controllers, ',');
    const bool is_v2 = line.substr(0, a) == "0" && controllers.empty();
    const bool is_v1_memory = std::find(names.begin(), names.end(), "memory") != names.end();
    if (!is_v2 && !is_v1_memory) continue;
    for (const CgroupMount& mount : is_v2 ? v2 : v1) {
      walk_up(root, group_dir(mount, path), mount.mount_point, is_v2 ? 2 : 1, &m, &headroom);
    }
  }
  return m;
}

uint64_t memory_available_for_budget() { return probe_memory_availability().available(); }

}  // namespace frugal::engine
