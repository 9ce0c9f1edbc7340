/**
 * Shoal's HNSW addon: hnswlib's HierarchicalNSW (the headers of the installed hnswlib-node, built
 * with its flags: see binding.gyp) behind an N-API class that takes Float32Array vectors and
 * answers with typed arrays, and that filters a search with a bitset instead of a JavaScript call
 * per candidate.
 *
 * Same semantics as hnswlib-node's HierarchicalNSW (its src/addon.cc): `cosine` is hnswlib's inner
 * product space over vectors normalized on the way in by the same float arithmetic, so a graph
 * built by either answers identically in the other and their files are interchangeable.
 *
 * One difference: addPoint on an existing label moves the node by shoal::movePoint (hnsw-move.h)
 * instead of hnswlib's updatePoint, which leaves stale links behind (bench:drift). New labels are
 * inserted by hnswlib's own addPoint, so a graph built by inserts alone is still hnswlib-node's.
 *
 * Everything is synchronous: Shoal calls it from the index worker thread, which it blocks.
 */

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <limits>
#include <memory>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include <napi.h>

#include "hnswlib/hnswlib.h"
#include "hnsw-move.h"

namespace {

// Exactly hnswlib-node's normalizePoint: float accumulation, in order.
void normalizePoint(std::vector<float>& vec) {
  const size_t dim = vec.size();
  const float norm = std::sqrt(std::fabs(std::inner_product(vec.begin(), vec.end(), vec.begin(), 0.0f)));
  if (norm > 0.0f) {
    for (size_t i = 0; i < dim; i++) vec[i] /= norm;
  }
}

/** Allows label l when bit (l & 7) of byte (l >> 3) is set; labels past the end are not allowed. */
class BitsetFilter : public hnswlib::BaseFilterFunctor {
public:
  BitsetFilter(const uint8_t* bits, size_t bytes) : bits_(bits), bytes_(bytes) {}
  bool operator()(hnswlib::labeltype label) override {
    const size_t byte = static_cast<size_t>(label >> 3);
    return byte < bytes_ && ((bits_[byte] >> (label & 7)) & 1) != 0;
  }

private:
  const uint8_t* bits_;
  size_t bytes_;
};

const char* typeName(const Napi::Value& v) {
  if (v.IsUndefined()) return "undefined";
  if (v.IsNull()) return "null";
  if (v.IsTypedArray()) {
    switch (v.As<Napi::TypedArray>().TypedArrayType()) {
      case napi_float32_array: return "a Float32Array";
      case napi_float64_array: return "a Float64Array";
      case napi_uint8_array: return "a Uint8Array";
      case napi_uint32_array: return "a Uint32Array";
      case napi_int32_array: return "an Int32Array";
      default: return "another typed array";
    }
  }
  if (v.IsArray()) return "an Array";
  if (v.IsNumber()) return "a number";
  if (v.IsString()) return "a string";
  if (v.IsBoolean()) return "a boolean";
  if (v.IsFunction()) return "a function";
  return "an object";
}

bool isTyped(const Napi::Value& v, napi_typedarray_type t) {
  return v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == t;
}

/** An integer from 0 to max in a JS number, or false. */
bool toIndex(const Napi::Value& v, double max, uint64_t* out) {
  if (!v.IsNumber()) return false;
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= max) || std::floor(d) != d) return false;
  *out = static_cast<uint64_t>(d);
  return true;
}

constexpr double MAX_U32 = 4294967295.0;

} // namespace

class HnswGraph : public Napi::ObjectWrap<HnswGraph> {
public:
  HnswGraph(const Napi::CallbackInfo& info) : Napi::ObjectWrap<HnswGraph>(info) {
    Napi::Env env = info.Env();
    if (!info[0].IsString()) {
      Napi::TypeError::New(env, std::string("HnswGraph: metric must be a string, got ") + typeName(info[0])).ThrowAsJavaScriptException();
      return;
    }
    const std::string metric = info[0].As<Napi::String>().Utf8Value();
    uint64_t dim = 0;
    if (!toIndex(info[1], 65536, &dim) || dim == 0) {
      Napi::RangeError::New(env, "HnswGraph: dim must be an integer from 1 to 65536").ThrowAsJavaScriptException();
      return;
    }
    dim_ = static_cast<uint32_t>(dim);
    if (metric == "l2") {
      space_.reset(new hnswlib::L2Space(dim_));
    } else if (metric == "ip") {
      space_.reset(new hnswlib::InnerProductSpace(dim_));
    } else if (metric == "cosine") {
      space_.reset(new hnswlib::InnerProductSpace(dim_));
      normalize_ = true;
    } else {
      Napi::RangeError::New(env, "HnswGraph: metric must be \"l2\", \"ip\" or \"cosine\", got \"" + metric + "\"").ThrowAsJavaScriptException();
    }
  }

  static Napi::Object Init(Napi::Env env, Napi::Object exports) {
    Napi::Function func = DefineClass(env, "HnswGraph", {
      InstanceMethod("initIndex", &HnswGraph::initIndex),
      InstanceMethod("readIndex", &HnswGraph::readIndex),
      InstanceMethod("writeIndex", &HnswGraph::writeIndex),
      InstanceMethod("resizeIndex", &HnswGraph::resizeIndex),
      InstanceMethod("getMaxElements", &HnswGraph::getMaxElements),
      InstanceMethod("getCurrentCount", &HnswGraph::getCurrentCount),
      InstanceMethod("addPoint", &HnswGraph::addPoint),
      InstanceMethod("markDelete", &HnswGraph::markDelete),
      InstanceMethod("unmarkDelete", &HnswGraph::unmarkDelete),
      InstanceMethod("setEf", &HnswGraph::setEf),
      InstanceMethod("getEf", &HnswGraph::getEf),
      InstanceMethod("getPoint", &HnswGraph::getPoint),
      InstanceMethod("searchKnn", &HnswGraph::searchKnn),
      InstanceMethod("exactKnn", &HnswGraph::exactKnn),
    });
    exports.Set("HnswGraph", func);
    return exports;
  }

private:
  uint32_t dim_ = 0;
  bool normalize_ = false;
  std::unique_ptr<hnswlib::SpaceInterface<float>> space_;
  std::unique_ptr<hnswlib::HierarchicalNSW<float>> index_;

  bool ready(Napi::Env env, const char* method) {
    if (index_) return true;
    Napi::Error::New(env, std::string(method) + ": the graph is not initialized (initIndex or readIndex first)").ThrowAsJavaScriptException();
    return false;
  }

  bool index(const Napi::CallbackInfo& info, size_t i, const char* method, const char* name, double max, uint64_t* out) {
    if (toIndex(info[i], max, out)) return true;
    Napi::RangeError::New(info.Env(), std::string(method) + ": " + name + " must be an integer from 0 to " + std::to_string(static_cast<uint64_t>(max)) +
                                        ", got " + (info[i].IsNumber() ? info[i].ToString().Utf8Value() : std::string(typeName(info[i]))))
      .ThrowAsJavaScriptException();
    return false;
  }

  /**
   * The vector argument i as hnswlib reads it: a Float32Array of dim numbers, normalized into
   * `copy` for cosine (the caller's array is never written).
   */
  const float* vectorArg(const Napi::CallbackInfo& info, size_t i, const char* method, const char* name, std::vector<float>& copy) {
    Napi::Env env = info.Env();
    if (!isTyped(info[i], napi_float32_array)) {
      Napi::TypeError::New(env, std::string(method) + ": " + name + " must be a Float32Array of " + std::to_string(dim_) + " numbers, got " + typeName(info[i]))
        .ThrowAsJavaScriptException();
      return nullptr;
    }
    Napi::Float32Array arr = info[i].As<Napi::Float32Array>();
    if (arr.ElementLength() != dim_) {
      Napi::RangeError::New(env, std::string(method) + ": " + name + " must have " + std::to_string(dim_) + " numbers, got " + std::to_string(arr.ElementLength()))
        .ThrowAsJavaScriptException();
      return nullptr;
    }
    if (!normalize_) return arr.Data();
    copy.assign(arr.Data(), arr.Data() + dim_);
    normalizePoint(copy);
    return copy.data();
  }

  void rethrow(Napi::Env env, const char* method, const std::exception& e) {
    Napi::Error::New(env, std::string(method) + ": hnswlib: " + e.what()).ThrowAsJavaScriptException();
  }

  /** initIndex(maxElements, m, efConstruction, randomSeed): a new empty graph (allowReplaceDeleted off). */
  Napi::Value initIndex(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint64_t maxElements, m, efConstruction, seed;
    if (!index(info, 0, "initIndex", "maxElements", MAX_U32, &maxElements) || !index(info, 1, "initIndex", "m", 10000, &m) ||
        !index(info, 2, "initIndex", "efConstruction", MAX_U32, &efConstruction) || !index(info, 3, "initIndex", "randomSeed", MAX_U32, &seed)) {
      return env.Undefined();
    }
    if (m < 2) {
      Napi::RangeError::New(env, "initIndex: m must be at least 2").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    try {
      index_.reset(new hnswlib::HierarchicalNSW<float>(space_.get(), maxElements, m, efConstruction, seed, false));
    } catch (const std::exception& e) {
      rethrow(env, "initIndex", e);
    }
    return env.Undefined();
  }

  /** readIndex(path): replaces the graph by the one in the file; on failure the old graph stays. */
  Napi::Value readIndex(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsString()) {
      Napi::TypeError::New(env, std::string("readIndex: path must be a string, got ") + typeName(info[0])).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    const std::string path = info[0].As<Napi::String>().Utf8Value();
    try {
      std::unique_ptr<hnswlib::HierarchicalNSW<float>> read(new hnswlib::HierarchicalNSW<float>(space_.get(), path, false, 0, false));
      // hnswlib takes the element layout from the file: a graph of another dimension would make
      // every distance read past its vector. Refuse it.
      if (read->label_offset_ - read->offsetData_ != space_->get_data_size()) {
        Napi::Error::New(env, "readIndex: " + path + ": the graph holds vectors of " + std::to_string((read->label_offset_ - read->offsetData_) / sizeof(float)) +
                                  " dimensions, this index " + std::to_string(space_->get_data_size() / sizeof(float)))
            .ThrowAsJavaScriptException();
        return env.Undefined();
      }
      index_ = std::move(read);
    } catch (const std::exception& e) {
      Napi::Error::New(env, "readIndex: " + path + ": hnswlib: " + e.what()).ThrowAsJavaScriptException();
    }
    return env.Undefined();
  }

  /**
   * writeIndex(path): hnswlib's saveIndex, which does not check its stream; a file whose size is
   * not the one hnswlib computes for the graph (a full disk) is an error.
   */
  Napi::Value writeIndex(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsString()) {
      Napi::TypeError::New(env, std::string("writeIndex: path must be a string, got ") + typeName(info[0])).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (!ready(env, "writeIndex")) return env.Undefined();
    const std::string path = info[0].As<Napi::String>().Utf8Value();
    try {
      index_->saveIndex(path);
      std::ifstream written(path, std::ios::binary | std::ios::ate);
      const std::streamoff size = written.is_open() ? static_cast<std::streamoff>(written.tellg()) : -1;
      const size_t expected = index_->indexFileSize();
      if (size < 0 || static_cast<size_t>(size) != expected) {
        Napi::Error::New(env, "writeIndex: " + path + " has " + std::to_string(size) + " bytes after writing, expected " + std::to_string(expected) + " (disk full?)")
          .ThrowAsJavaScriptException();
      }
    } catch (const std::exception& e) {
      rethrow(env, "writeIndex", e);
    }
    return env.Undefined();
  }

  Napi::Value resizeIndex(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint64_t n;
    if (!ready(env, "resizeIndex") || !index(info, 0, "resizeIndex", "maxElements", MAX_U32, &n)) return env.Undefined();
    try {
      index_->resizeIndex(n);
    } catch (const std::exception& e) {
      rethrow(env, "resizeIndex", e);
    }
    return env.Undefined();
  }

  Napi::Value getMaxElements(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), index_ ? static_cast<double>(index_->max_elements_) : 0);
  }

  Napi::Value getCurrentCount(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), index_ ? static_cast<double>(index_->cur_element_count.load()) : 0);
  }

  /**
   * addPoint(vector, label): inserts a new label; an existing one (deleted or not: it is undeleted)
   * is moved to the vector by shoal::movePoint (hnsw-move.h), not by hnswlib's updatePoint.
   */
  Napi::Value addPoint(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::vector<float> copy;
    uint64_t label;
    if (!ready(env, "addPoint")) return env.Undefined();
    const float* v = vectorArg(info, 0, "addPoint", "vector", copy);
    if (v == nullptr || !index(info, 1, "addPoint", "label", MAX_U32, &label)) return env.Undefined();
    try {
      auto found = index_->label_lookup_.find(static_cast<hnswlib::labeltype>(label));
      if (found == index_->label_lookup_.end()) {
        index_->addPoint(v, static_cast<hnswlib::labeltype>(label), false);
      } else {
        if (index_->isMarkedDeleted(found->second)) index_->unmarkDeletedInternal(found->second);
        shoal::movePoint(*index_, found->second, v);
      }
    } catch (const std::exception& e) {
      rethrow(env, "addPoint", e);
    }
    return env.Undefined();
  }

  Napi::Value markDelete(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint64_t label;
    if (!ready(env, "markDelete") || !index(info, 0, "markDelete", "label", MAX_U32, &label)) return env.Undefined();
    try {
      index_->markDelete(static_cast<hnswlib::labeltype>(label));
    } catch (const std::exception& e) {
      rethrow(env, "markDelete", e);
    }
    return env.Undefined();
  }

  Napi::Value unmarkDelete(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint64_t label;
    if (!ready(env, "unmarkDelete") || !index(info, 0, "unmarkDelete", "label", MAX_U32, &label)) return env.Undefined();
    try {
      index_->unmarkDelete(static_cast<hnswlib::labeltype>(label));
    } catch (const std::exception& e) {
      rethrow(env, "unmarkDelete", e);
    }
    return env.Undefined();
  }

  Napi::Value setEf(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint64_t ef;
    if (!ready(env, "setEf") || !index(info, 0, "setEf", "ef", MAX_U32, &ef)) return env.Undefined();
    index_->setEf(ef);
    return env.Undefined();
  }

  Napi::Value getEf(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!ready(env, "getEf")) return env.Undefined();
    return Napi::Number::New(env, static_cast<double>(index_->ef_));
  }

  /** getPoint(label): the vector hnswlib holds (normalized for cosine), a new Float32Array. */
  Napi::Value getPoint(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint64_t label;
    if (!ready(env, "getPoint") || !index(info, 0, "getPoint", "label", MAX_U32, &label)) return env.Undefined();
    try {
      const std::vector<float> v = index_->getDataByLabel<float>(static_cast<hnswlib::labeltype>(label));
      Napi::Float32Array out = Napi::Float32Array::New(env, v.size());
      std::copy(v.begin(), v.end(), out.Data());
      return out;
    } catch (const std::exception& e) {
      rethrow(env, "getPoint", e);
      return env.Undefined();
    }
  }

  /** {labels: Uint32Array, distances: Float32Array} from (distance, label) pairs in ascending order. */
  static Napi::Object result(Napi::Env env, const std::vector<std::pair<float, hnswlib::labeltype>>& hits) {
    Napi::Uint32Array labels = Napi::Uint32Array::New(env, hits.size());
    Napi::Float32Array distances = Napi::Float32Array::New(env, hits.size());
    for (size_t i = 0; i < hits.size(); i++) {
      labels[i] = static_cast<uint32_t>(hits[i].second);
      distances[i] = hits[i].first;
    }
    Napi::Object out = Napi::Object::New(env);
    out.Set("labels", labels);
    out.Set("distances", distances);
    return out;
  }

  /**
   * searchKnn(query, k, allowed?): hnswlib's searchKnn, nearest first. `allowed` is a bitset over
   * labels (bit l & 7 of byte l >> 3); without it every point that is not marked deleted counts.
   */
  Napi::Value searchKnn(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::vector<float> copy;
    uint64_t k;
    if (!ready(env, "searchKnn")) return env.Undefined();
    const float* q = vectorArg(info, 0, "searchKnn", "query", copy);
    if (q == nullptr || !index(info, 1, "searchKnn", "k", static_cast<double>(index_->max_elements_), &k)) return env.Undefined();
    std::unique_ptr<BitsetFilter> filter;
    if (!info[2].IsUndefined()) {
      if (!isTyped(info[2], napi_uint8_array)) {
        Napi::TypeError::New(env, std::string("searchKnn: allowed must be a Uint8Array bitset, got ") + typeName(info[2])).ThrowAsJavaScriptException();
        return env.Undefined();
      }
      Napi::Uint8Array bits = info[2].As<Napi::Uint8Array>();
      filter.reset(new BitsetFilter(bits.Data(), bits.ElementLength()));
    }
    try {
      auto knn = index_->searchKnn(q, k, filter.get());
      std::vector<std::pair<float, hnswlib::labeltype>> hits(knn.size());
      for (size_t i = hits.size(); i-- > 0;) {
        hits[i] = knn.top();
        knn.pop();
      }
      return result(env, hits);
    } catch (const std::exception& e) {
      rethrow(env, "searchKnn", e);
      return env.Undefined();
    }
  }

  /**
   * exactKnn(query, k, labels): every label of `labels` (a Uint32Array of points in the graph, not
   * marked deleted) scored with hnswlib's own distance over the vectors it holds; returns the k
   * nearest and every other at exactly the k-th distance (so that the caller can break ties its
   * own way), in ascending (distance, label) order.
   */
  Napi::Value exactKnn(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::vector<float> copy;
    uint64_t k;
    if (!ready(env, "exactKnn")) return env.Undefined();
    const float* q = vectorArg(info, 0, "exactKnn", "query", copy);
    if (q == nullptr || !index(info, 1, "exactKnn", "k", MAX_U32, &k)) return env.Undefined();
    if (!isTyped(info[2], napi_uint32_array)) {
      Napi::TypeError::New(env, std::string("exactKnn: labels must be a Uint32Array, got ") + typeName(info[2])).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    Napi::Uint32Array arr = info[2].As<Napi::Uint32Array>();
    const uint32_t* labels = arr.Data();
    const size_t n = arr.ElementLength();
    hnswlib::HierarchicalNSW<float>& g = *index_;
    std::vector<std::pair<float, hnswlib::labeltype>> all;
    all.reserve(n);
    {
      std::unique_lock<std::mutex> lock(g.label_lookup_lock);
      for (size_t i = 0; i < n; i++) {
        auto found = g.label_lookup_.find(labels[i]);
        if (found == g.label_lookup_.end() || g.isMarkedDeleted(found->second)) {
          lock.unlock();
          Napi::RangeError::New(env, "exactKnn: labels[" + std::to_string(i) + "] = " + std::to_string(labels[i]) + " is not a point of the graph")
            .ThrowAsJavaScriptException();
          return env.Undefined();
        }
        float d = g.fstdistfunc_(q, g.getDataByInternalId(found->second), g.dist_func_param_);
        // A NaN (ip of huge components: inf + -inf) would break the sorts' strict weak order,
        // which lets std::sort's unguarded insertion run off the vector: score it last instead.
        if (std::isnan(d)) d = std::numeric_limits<float>::infinity();
        all.emplace_back(d, labels[i]);
      }
    }
    if (k == 0) all.clear();
    if (all.size() > k) {
      auto kth = all.begin() + (k - 1);
      std::nth_element(all.begin(), kth, all.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
      const float bound = kth->first;
      // Everything before kth is at most bound; keep those after it that tie with it.
      auto end = std::partition(kth + 1, all.end(), [bound](const auto& p) { return p.first <= bound; });
      all.erase(end, all.end());
    }
    std::sort(all.begin(), all.end());
    return result(env, all);
  }
};

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  return HnswGraph::Init(env, exports);
}

NODE_API_MODULE(shoal_hnsw, Init)
