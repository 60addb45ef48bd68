// The llama.cpp calls node-llama-cpp 3.21.1 does not expose, made on node-llama-cpp's own
// llama_context:
//
// - llama_get_logits_ith: the raw logits of a batch row (node-llama-cpp only reports the
//   sampler's softmax, so without this the adapter can return log-softmax only);
// - llama_memory_seq_div: llama.cpp's own position division, which `llama.cpp-compatible` mode
//   needs to reproduce llama-completion's --grp-attn-n/--grp-attn-w exactly (its K-shift
//   bookkeeping differs from any sequence of seq_add calls, see llama-cpp-compatible-scheduler.ts);
// - the position of every cell of a sequence, which llama.cpp's API has no getter for (only the
//   smallest and largest): read from the sequence's serialized state (llama_state_seq_get_data),
//   whose cell metadata comes first, so the conformance suite can check the positions llama.cpp
//   actually rotates keys and queries at;
// - a K-shift of only the cells that moved. After llama_memory_seq_add llama.cpp re-rotates every
//   cell of the cache at the next decode (its graph spans the whole cache, shift 0 included), and
//   reserves its worst-case graph again; exact Self-Extend moves the W neighbour keys before every
//   token, so that whole-cache pass costs as much as the attention itself at long contexts. This
//   applies the same pending shifts with llama.cpp's own rotation (llama_kv_cache::build_rope_shift)
//   to the range of cells that have one, then clears them, so llama.cpp finds nothing left to shift.
//   It runs on a scheduler of its own over the context's backends (a "key shifter"), so the
//   context's scheduler keeps its decode graph, which llama.cpp then reuses.
//
// node-llama-cpp's JS `LlamaContext._ctx` is a Node-API object wrapping its C++ `AddonContext`
// (llama/addon/AddonContext.h in the node-llama-cpp package). napi_unwrap hands back that object;
// we compile against node-llama-cpp's own header so the member layout is the one its prebuilt
// binary was built with, and check the result (model pointer, context size) before using it.
//
// libllama is not linked: node-llama-cpp has already loaded it into the process, and the
// functions are looked up there (dl_iterate_phdr + dlsym), so both addons share one library.

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <link.h>

// Every standard header llama.cpp's internal headers use, included before `private` is redefined.
#include <array>
#include <bitset>
#include <cassert>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "AddonContext.h"
#include "AddonModel.h"
#include "node_api.h"

// llama.cpp's internal classes, from the sources of the exact release node-llama-cpp's binaries
// were built from (its git bundle). The K-shift of moved cells needs members they keep private
// (the cache's cells and layers, the context's scheduler and graph results); access specifiers do
// not change the layout the compiler gives a class, so the members are made reachable here, and
// every function of theirs that is not inline is looked up in the loaded libllama, never linked.
#define private public
#define protected public
#include "llama-context.h"
#include "llama-kv-cache-iswa.h"
#include "llama-kv-cache.h"
#undef private
#undef protected

namespace {

struct LlamaFunctions {
  float* (*getLogitsIth)(llama_context*, int32_t) = nullptr;
  llama_memory_t (*getMemory)(const llama_context*) = nullptr;
  void (*memorySequenceDivide)(llama_memory_t, llama_seq_id, llama_pos, llama_pos, int) = nullptr;
  uint32_t (*contextSize)(const llama_context*) = nullptr;
  const llama_model* (*getModel)(const llama_context*) = nullptr;
  const llama_vocab* (*modelVocabulary)(const llama_model*) = nullptr;
  int32_t (*vocabularyTokenCount)(const llama_vocab*) = nullptr;
  size_t (*sequenceStateSize)(llama_context*, llama_seq_id) = nullptr;
  size_t (*sequenceStateData)(llama_context*, uint8_t*, size_t, llama_seq_id) = nullptr;
  std::string libraryPath;
  bool resolved = false;
};

// What the K-shift of moved cells calls: llama.cpp's C++ members (non-virtual members take `this`
// first, as the Itanium ABI calls them) and ggml's functions, by their exported names. Missing
// ones leave the K-shift to llama.cpp (applyPendingKeyShifts returns -1 and says why).
struct KeyShiftFunctions {
  const void* kvCacheVtable = nullptr;
  const void* slidingWindowPairVtable = nullptr;
  ggml_tensor* (*buildRopeShift)(const llama_kv_cache*, const llama_cparams&, ggml_context*, ggml_tensor*,
                                 ggml_tensor*, ggml_tensor*, ggml_tensor*, float, float, uint32_t) = nullptr;
  ggml_tensor* (*ropeFactors)(const llama_model*, const llama_cparams&, int) = nullptr;
  float (*ropeFrequencyBase)(const llama_model*, const llama_cparams&, int) = nullptr;
  float (*ropeFrequencyScale)(const llama_model*, const llama_cparams&, int) = nullptr;
  uint32_t (*rotatedDimensions)(const llama_hparams*, uint32_t) = nullptr;
  uint32_t (*keyValueHeads)(const llama_hparams*, uint32_t) = nullptr;
  uint32_t (*keyHeadSize)(const llama_hparams*, uint32_t) = nullptr;
  uint32_t (*keyRowSize)(const llama_hparams*, uint32_t) = nullptr;
  bool (*hasRope)(const llama_hparams*, uint32_t) = nullptr;
  ggml_backend_sched_t (*schedulerNew)(ggml_backend_t*, ggml_backend_buffer_type_t*, int, size_t, bool, bool) = nullptr;
  void (*schedulerFree)(ggml_backend_sched_t) = nullptr;
  ggml_status (*schedulerCompute)(ggml_backend_sched_t, ggml_cgraph*) = nullptr;
  ggml_context* (*initContext)(ggml_init_params) = nullptr;
  void (*freeContext)(ggml_context*) = nullptr;
  ggml_cgraph* (*newGraph)(ggml_context*, size_t, bool) = nullptr;
  size_t (*tensorOverhead)() = nullptr;
  size_t (*graphOverhead)(size_t, bool) = nullptr;
  ggml_tensor* (*newTensor1d)(ggml_context*, ggml_type, int64_t) = nullptr;
  void (*setInput)(ggml_tensor*) = nullptr;
  ggml_tensor* (*view3d)(ggml_context*, ggml_tensor*, int64_t, int64_t, int64_t, size_t, size_t, size_t) = nullptr;
  size_t (*rowSize)(ggml_type, int64_t) = nullptr;
  void (*buildForwardExpand)(ggml_cgraph*, ggml_tensor*) = nullptr;
  bool (*isQuantized)(ggml_type) = nullptr;
  bool (*memoryCanShift)(llama_memory_t) = nullptr;
  ggml_backend_dev_t (*backendDevice)(ggml_backend_t) = nullptr;
  enum ggml_backend_dev_type (*deviceType)(ggml_backend_dev_t) = nullptr;
  void (*schedulerReset)(ggml_backend_sched_t) = nullptr;
  bool (*schedulerAllocateGraph)(ggml_backend_sched_t, ggml_cgraph*) = nullptr;
  void (*tensorSet)(ggml_tensor*, const void*, size_t, size_t) = nullptr;
  bool resolved = false;
  std::string missing;
};

KeyShiftFunctions keyShift;

LlamaFunctions functions;

struct LibrarySearch {
  std::string path;
  void* handle = nullptr;
};

// Finds a loaded shared object that exports llama_get_logits_ith: node-llama-cpp's libllama (or
// its addon, whose dependency scope includes it).
int findLlamaLibrary(dl_phdr_info* info, size_t, void* data) {
  auto* search = static_cast<LibrarySearch*>(data);
  if (info->dlpi_name == nullptr || info->dlpi_name[0] == '\0') return 0;
  const std::string name = info->dlpi_name;
  if (name.find("llama") == std::string::npos) return 0;
  void* handle = dlopen(info->dlpi_name, RTLD_LAZY | RTLD_NOLOAD);
  if (handle == nullptr) return 0;
  if (dlsym(handle, "llama_get_logits_ith") != nullptr && dlsym(handle, "llama_memory_seq_div") != nullptr) {
    search->path = name;
    search->handle = handle;
    return 1;
  }
  dlclose(handle);
  return 0;
}

template <typename Function>
bool lookUp(void* handle, const char* symbol, Function& target) {
  target = reinterpret_cast<Function>(dlsym(handle, symbol));
  return target != nullptr;
}

bool resolveFunctions(std::string& error) {
  if (functions.resolved) return true;
  LibrarySearch search;
  dl_iterate_phdr(findLlamaLibrary, &search);
  if (search.handle == nullptr) {
    error = "libllama is not loaded in this process (load a model with node-llama-cpp first)";
    return false;
  }
  const bool found = lookUp(search.handle, "llama_get_logits_ith", functions.getLogitsIth) &&
                     lookUp(search.handle, "llama_get_memory", functions.getMemory) &&
                     lookUp(search.handle, "llama_memory_seq_div", functions.memorySequenceDivide) &&
                     lookUp(search.handle, "llama_n_ctx", functions.contextSize) &&
                     lookUp(search.handle, "llama_get_model", functions.getModel) &&
                     lookUp(search.handle, "llama_model_get_vocab", functions.modelVocabulary) &&
                     lookUp(search.handle, "llama_vocab_n_tokens", functions.vocabularyTokenCount) &&
                     lookUp(search.handle, "llama_state_seq_get_size", functions.sequenceStateSize) &&
                     lookUp(search.handle, "llama_state_seq_get_data", functions.sequenceStateData);
  if (!found) {
    error = "the loaded libllama (" + search.path + ") lacks a function this bridge needs";
    return false;
  }
  functions.libraryPath = search.path;
  functions.resolved = true;
  // dlsym on the library's handle also searches its dependencies: ggml's functions are found too.
  const char* missing = nullptr;
  auto need = [&](const char* symbol, auto& target) {
    if (missing == nullptr && !lookUp(search.handle, symbol, target)) missing = symbol;
  };
  // A vtable symbol names the table's start; objects point two entries in (offset to top, typeinfo).
  auto vtableOf = [&](const char* symbol, const void*& target) {
    void* table = nullptr;
    need(symbol, table);
    if (table != nullptr) target = static_cast<char*>(table) + 2 * sizeof(void*);
  };
  vtableOf("_ZTV14llama_kv_cache", keyShift.kvCacheVtable);
  vtableOf("_ZTV19llama_kv_cache_iswa", keyShift.slidingWindowPairVtable);
  need("_ZNK14llama_kv_cache16build_rope_shiftERK13llama_cparamsP12ggml_contextP11ggml_tensorS6_S6_S6_ffj",
       keyShift.buildRopeShift);
  need("_ZNK11llama_model16get_rope_factorsERK13llama_cparamsi", keyShift.ropeFactors);
  need("_ZNK11llama_model18get_rope_freq_baseERK13llama_cparamsi", keyShift.ropeFrequencyBase);
  need("_ZNK11llama_model19get_rope_freq_scaleERK13llama_cparamsi", keyShift.ropeFrequencyScale);
  need("_ZNK13llama_hparams5n_rotEj", keyShift.rotatedDimensions);
  need("_ZNK13llama_hparams9n_head_kvEj", keyShift.keyValueHeads);
  need("_ZNK13llama_hparams13n_embd_head_kEj", keyShift.keyHeadSize);
  need("_ZNK13llama_hparams12n_embd_k_gqaEj", keyShift.keyRowSize);
  need("_ZNK13llama_hparams8has_ropeEj", keyShift.hasRope);
  need("ggml_backend_sched_new", keyShift.schedulerNew);
  need("ggml_backend_sched_free", keyShift.schedulerFree);
  need("ggml_backend_sched_graph_compute", keyShift.schedulerCompute);
  need("ggml_init", keyShift.initContext);
  need("ggml_free", keyShift.freeContext);
  need("ggml_new_graph_custom", keyShift.newGraph);
  need("ggml_tensor_overhead", keyShift.tensorOverhead);
  need("ggml_graph_overhead_custom", keyShift.graphOverhead);
  need("ggml_new_tensor_1d", keyShift.newTensor1d);
  need("ggml_set_input", keyShift.setInput);
  need("ggml_view_3d", keyShift.view3d);
  need("ggml_row_size", keyShift.rowSize);
  need("ggml_build_forward_expand", keyShift.buildForwardExpand);
  need("ggml_is_quantized", keyShift.isQuantized);
  need("llama_memory_can_shift", keyShift.memoryCanShift);
  need("ggml_backend_get_device", keyShift.backendDevice);
  need("ggml_backend_dev_type", keyShift.deviceType);
  need("ggml_backend_sched_reset", keyShift.schedulerReset);
  need("ggml_backend_sched_alloc_graph", keyShift.schedulerAllocateGraph);
  need("ggml_backend_tensor_set", keyShift.tensorSet);
  keyShift.resolved = missing == nullptr;
  if (missing != nullptr) keyShift.missing = missing;
  return true;
}

napi_value throwError(napi_env env, const std::string& message) {
  napi_throw_error(env, "SELF_EXTEND_NATIVE_BRIDGE", message.c_str());
  return nullptr;
}

// Reads the arguments (native context object, native model object, ...) and returns the
// llama_context after checking that the unwrapped objects are what we think they are.
llama_context* contextFromArguments(napi_env env, napi_value* arguments, size_t count, std::string& error) {
  if (count < 2) {
    error = "expected node-llama-cpp's native context and model objects";
    return nullptr;
  }
  if (!resolveFunctions(error)) return nullptr;
  void* contextPointer = nullptr;
  void* modelPointer = nullptr;
  if (napi_unwrap(env, arguments[0], &contextPointer) != napi_ok || contextPointer == nullptr) {
    error = "the first argument is not node-llama-cpp's native context (LlamaContext._ctx)";
    return nullptr;
  }
  if (napi_unwrap(env, arguments[1], &modelPointer) != napi_ok || modelPointer == nullptr) {
    error = "the second argument is not node-llama-cpp's native model (LlamaModel._model)";
    return nullptr;
  }
  // node-addon-api wraps `this` of ObjectWrap<T>, T's first and only base.
  auto* addonContext = static_cast<AddonContext*>(static_cast<Napi::ObjectWrap<AddonContext>*>(contextPointer));
  auto* addonModel = static_cast<AddonModel*>(static_cast<Napi::ObjectWrap<AddonModel>*>(modelPointer));
  if (addonContext->model != addonModel) {
    error = "node-llama-cpp's native context does not belong to the given model (layout mismatch?)";
    return nullptr;
  }
  if (addonContext->disposed || !addonContext->contextLoaded || addonContext->ctx == nullptr) {
    error = "node-llama-cpp's context is disposed or not loaded";
    return nullptr;
  }
  if (addonModel->model == nullptr || functions.getModel(addonContext->ctx) != addonModel->model) {
    error = "the llama_context found does not use the model's llama_model (layout mismatch?)";
    return nullptr;
  }
  return addonContext->ctx;
}

bool readInt32(napi_env env, napi_value value, int32_t& result) {
  return napi_get_value_int32(env, value, &result) == napi_ok;
}

// The arguments of one call, and node-llama-cpp's llama_context taken from the first two.
template <size_t Count>
struct Call {
  napi_value arguments[Count];
  size_t count = Count;
  llama_context* context = nullptr;
};

// Reads the arguments and checks the context; on failure a JS error is pending and false returned.
template <size_t Count>
bool beginCall(napi_env env, napi_callback_info info, Call<Count>& call) {
  napi_get_cb_info(env, info, &call.count, call.arguments, nullptr, nullptr);
  std::string error;
  call.context = contextFromArguments(env, call.arguments, call.count, error);
  if (call.context == nullptr) throwError(env, error);
  return call.context != nullptr;
}

int32_t vocabularySizeOf(llama_context* context) {
  return functions.vocabularyTokenCount(functions.modelVocabulary(functions.getModel(context)));
}

// readLogits(nativeContext, nativeModel, batchIndex, target: Float32Array) -> vocabulary size
napi_value ReadLogits(napi_env env, napi_callback_info info) {
  Call<4> call;
  if (!beginCall(env, info, call)) return nullptr;
  napi_value* arguments = call.arguments;
  int32_t batchIndex = 0;
  if (call.count < 4 || !readInt32(env, arguments[2], batchIndex)) {
    return throwError(env, "readLogits: batchIndex must be an integer");
  }
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  bool isTypedArray = false;
  napi_is_typedarray(env, arguments[3], &isTypedArray);
  if (!isTypedArray) return throwError(env, "readLogits: target must be a Float32Array");
  napi_get_typedarray_info(env, arguments[3], &type, &length, &data, nullptr, nullptr);
  if (type != napi_float32_array) return throwError(env, "readLogits: target must be a Float32Array");
  const int32_t vocabularySize = vocabularySizeOf(call.context);
  if (length < static_cast<size_t>(vocabularySize)) {
    return throwError(env, "readLogits: target holds " + std::to_string(length) + " floats, the vocabulary has " +
                               std::to_string(vocabularySize));
  }
  // llama_get_logits_ith logs and returns null for a row that has no logits, instead of throwing.
  const float* logits = functions.getLogitsIth(call.context, batchIndex);
  if (logits == nullptr) {
    return throwError(env, "readLogits: llama.cpp has no logits for batch row " + std::to_string(batchIndex));
  }
  std::memcpy(data, logits, sizeof(float) * static_cast<size_t>(vocabularySize));
  napi_value result;
  napi_create_int32(env, vocabularySize, &result);
  return result;
}

// divideSequencePositions(nativeContext, nativeModel, sequenceId, start, end, divisor)
napi_value DivideSequencePositions(napi_env env, napi_callback_info info) {
  Call<6> call;
  if (!beginCall(env, info, call)) return nullptr;
  napi_value* arguments = call.arguments;
  int32_t sequenceId = 0, start = 0, end = 0, divisor = 0;
  if (call.count < 6 || !readInt32(env, arguments[2], sequenceId) || !readInt32(env, arguments[3], start) ||
      !readInt32(env, arguments[4], end) || !readInt32(env, arguments[5], divisor)) {
    return throwError(env, "divideSequencePositions: sequenceId, start, end and divisor must be integers");
  }
  if (divisor < 1) return throwError(env, "divideSequencePositions: divisor must be at least 1");
  functions.memorySequenceDivide(functions.getMemory(call.context), sequenceId, start, end, divisor);
  return nullptr;
}

// readSequencePositions(nativeContext, nativeModel, sequenceId) -> Int32Array of cell positions
//
// The layout written by llama_state_seq_get_data of the llama.cpp release node-llama-cpp 3.21.1
// ships: uint32 magic 0xaf143cd8, int32 sequence id, then llama_kv_cache::state_write's uint32
// stream count; per stream a uint32 cell count and, when it is not zero, per cell
// { int32 position, uint32 sequence count, that many int32 sequence ids } in cell order, then the
// K/V data. One sequence lives in one stream, so the first stream with cells is the whole answer.
// Every cell must name exactly the asked sequence: anything else means the layout is not the one
// described here, and the call fails instead of returning wrong positions.
napi_value ReadSequencePositions(napi_env env, napi_callback_info info) {
  Call<3> call;
  if (!beginCall(env, info, call)) return nullptr;
  int32_t sequenceId = 0;
  if (call.count < 3 || !readInt32(env, call.arguments[2], sequenceId)) {
    return throwError(env, "readSequencePositions: sequenceId must be an integer");
  }
  const size_t size = functions.sequenceStateSize(call.context, sequenceId);
  std::string state(size, '\0');
  const size_t written =
      functions.sequenceStateData(call.context, reinterpret_cast<uint8_t*>(state.data()), size, sequenceId);
  size_t offset = 0;
  auto read = [&](auto& value) {
    if (offset + sizeof(value) > written) return false;
    std::memcpy(&value, state.data() + offset, sizeof(value));
    offset += sizeof(value);
    return true;
  };
  const std::string layoutError = "readSequencePositions: the sequence state is not laid out as expected";
  // llama_context::state_seq_get_data's header: its magic number and the sequence id.
  uint32_t magic = 0;
  int32_t headerSequence = -1;
  if (!read(magic) || magic != 0xaf143cd8u || !read(headerSequence) || headerSequence != sequenceId) {
    return throwError(env, layoutError + " (header)");
  }
  uint32_t streamCount = 0;
  if (!read(streamCount)) return throwError(env, layoutError + " (no stream count)");
  std::vector<int32_t> positions;
  for (uint32_t stream = 0; stream < streamCount && positions.empty(); stream++) {
    uint32_t cellCount = 0;
    if (!read(cellCount)) return throwError(env, layoutError + " (no cell count)");
    for (uint32_t cell = 0; cell < cellCount; cell++) {
      int32_t position = 0;
      uint32_t sequenceCount = 0;
      int32_t owner = -1;
      if (!read(position) || !read(sequenceCount) || sequenceCount != 1 || !read(owner) || owner != sequenceId) {
        return throwError(env, layoutError + " (cell " + std::to_string(cell) + ")");
      }
      positions.push_back(position);
    }
  }
  napi_value buffer, result;
  void* data = nullptr;
  napi_create_arraybuffer(env, positions.size() * sizeof(int32_t), &data, &buffer);
  if (!positions.empty()) std::memcpy(data, positions.data(), positions.size() * sizeof(int32_t));
  napi_create_typedarray(env, napi_int32_array, positions.size(), buffer, 0, &result);
  return result;
}

// A scheduler of the bridge's own over the context's backends (the same device streams and CPU
// thread pool), made once per sequence; the context's own scheduler is never touched, so the
// decode graph it holds stays valid and llama.cpp reuses it. Freed by releaseKeyShifter before the
// context is; a shifter that is only garbage-collected leaks its small compute buffer rather than
// free it at a time when the backends' libraries may be shutting down.
struct KeyShifter {
  llama_context* context = nullptr;
  ggml_backend_sched_t scheduler = nullptr;
  size_t graphSize = 0;
};

// Rotates the keys of the cells of one cache's only stream that have a pending shift (from
// llama_memory_seq_add), over the smallest range of cells holding them, and clears the shifts.
// Adds the number of cells in that range to rotatedCells. Returns why it left the shift to
// llama.cpp's own whole-cache pass at the next decode (which then gives the same keys), or ""
// when done; a reason starting with "!" is an error after which no fallback is sound.
std::string rotateCacheShiftedCells(KeyShifter& shifter, llama_kv_cache* cache, int32_t sequenceId,
                                    int64_t& rotatedCells) {
  if (cache->n_stream != 1 || cache->other != nullptr) return "the KV cache has several streams";
  if (sequenceId < 0 || static_cast<size_t>(sequenceId) >= cache->seq_to_stream.size()) {
    return "no such sequence";
  }
  llama_kv_cells& cells = cache->v_cells[0];
  if (!cells.get_has_shift()) return "";
  if (cache->layers.empty()) return "the KV cache has no layers";
  for (const auto& layer : cache->layers) {
    if (keyShift.isQuantized(layer.k->type)) return "the key cache is quantized";
    // The layout this file was compiled against, checked on what llama.cpp allocated: one row of
    // n_embd_k_gqa per cell. Anything else means the headers are not those of the loaded library.
    if (layer.k == nullptr || layer.k->ne[0] != keyShift.keyRowSize(&cache->hparams, layer.il) ||
        layer.k->ne[1] != cells.size() || layer.k->ne[2] != 1) {
      return "the KV cache is not laid out as this bridge expects";
    }
  }
  if (cache->hparams.rope_type == LLAMA_ROPE_TYPE_NONE) return "the model has no RoPE";
  // Where RoPE scales what it rotates (YaRN's magnitude correction, an attention factor), llama.cpp's
  // K-shift scales every cell, moved or not; only its own whole-cache pass gives llama.cpp's keys.
  const llama_cparams& contextParameters = shifter.context->cparams;
  if (contextParameters.yarn_ext_factor != 0.0f || contextParameters.yarn_attn_factor != 1.0f) {
    return "RoPE scales the keys it rotates (YaRN or an attention factor)";
  }
  uint32_t first = cells.size(), last = 0;
  for (uint32_t cell = 0; cell < cells.size(); cell++) {
    if (!cells.is_empty(cell) && cells.get_shift(cell) != 0) {
      if (first == cells.size()) first = cell;
      last = cell;
    }
  }
  if (first == cells.size()) {
    cells.reset_shift();
    return "";
  }
  const uint32_t count = last - first + 1;
  std::vector<int32_t> shifts(count, 0);
  for (uint32_t cell = first; cell <= last; cell++) {
    if (!cells.is_empty(cell)) shifts[cell - first] = cells.get_shift(cell);
  }

  // As llama_kv_cache::build_graph_shift builds its K-shift graph, over cells first..last only.
  const size_t tensorCount = 2 * cache->layers.size() + 8;
  ggml_init_params parameters{};
  parameters.mem_size =
      keyShift.tensorOverhead() * tensorCount + keyShift.graphOverhead(shifter.graphSize, false);
  parameters.no_alloc = true;
  ggml_context* graphContext = keyShift.initContext(parameters);
  if (graphContext == nullptr) return "!cannot make a ggml context for the K-shift graph";
  ggml_cgraph* graph = keyShift.newGraph(graphContext, shifter.graphSize, false);
  ggml_tensor* shift = keyShift.newTensor1d(graphContext, GGML_TYPE_I32, count);
  keyShift.setInput(shift);
  const llama_hparams* hparams = &cache->hparams;
  const llama_model* model = &cache->model;
  for (const auto& layer : cache->layers) {
    const uint32_t index = layer.il;
    if (!keyShift.hasRope(hparams, index)) continue;
    const uint32_t headSize = keyShift.keyHeadSize(hparams, index);
    const uint32_t rowSize = keyShift.keyRowSize(hparams, index);
    const uint32_t rotated = keyShift.rotatedDimensions(hparams, index);
    const uint32_t withoutRope = hparams->n_lora_kv > 0 ? headSize - rotated : 0;
    const size_t cellStride = keyShift.rowSize(layer.k->type, rowSize);
    ggml_tensor* keys = keyShift.view3d(graphContext, layer.k, rotated, keyShift.keyValueHeads(hparams, index), count,
                                        keyShift.rowSize(layer.k->type, headSize), cellStride,
                                        keyShift.rowSize(layer.k->type, withoutRope) + cellStride * first);
    ggml_tensor* result = keyShift.buildRopeShift(
        cache, contextParameters, graphContext, keys, shift, nullptr,
        keyShift.ropeFactors(model, contextParameters, index),
        keyShift.ropeFrequencyBase(model, contextParameters, index),
        keyShift.ropeFrequencyScale(model, contextParameters, index), index);
    keyShift.buildForwardExpand(graph, result);
  }
  keyShift.schedulerReset(shifter.scheduler);
  if (!keyShift.schedulerAllocateGraph(shifter.scheduler, graph)) {
    keyShift.freeContext(graphContext);
    return "the scheduler could not allocate the K-shift graph";
  }
  keyShift.tensorSet(shift, shifts.data(), 0, count * sizeof(int32_t));
  // Synchronous: the keys are rotated when this returns.
  const ggml_status status = keyShift.schedulerCompute(shifter.scheduler, graph);
  keyShift.schedulerReset(shifter.scheduler);
  keyShift.freeContext(graphContext);
  // The keys may be half rotated: nothing sound is left to fall back to.
  if (status != GGML_STATUS_SUCCESS) return "!the K-shift graph failed to compute";
  cells.reset_shift();
  rotatedCells += count;
  return "";
}

// The same for the context's memory: a plain llama_kv_cache, or the sliding-window pair of Gemma 2
// and 3 (llama_kv_cache_iswa: a full cache and a window cache, each shifted and updated on its own
// by llama.cpp too). Recurrent and hybrid memories are other classes and are left to llama.cpp.
std::string rotateShiftedCells(KeyShifter& shifter, int32_t sequenceId, int64_t& rotatedCells) {
  rotatedCells = 0;
  llama_memory_t memory = functions.getMemory(shifter.context);
  // llama.cpp aborts a K-shift where the memory cannot shift; leave that to it.
  if (memory == nullptr || !keyShift.memoryCanShift(memory)) return "the context's memory cannot shift keys";
  const void* vtable = *reinterpret_cast<const void* const*>(memory);
  if (vtable == keyShift.kvCacheVtable) {
    return rotateCacheShiftedCells(shifter, static_cast<llama_kv_cache*>(memory), sequenceId, rotatedCells);
  }
  if (vtable == keyShift.slidingWindowPairVtable) {
    auto* pair = static_cast<llama_kv_cache_iswa*>(memory);
    // Checked for both before either is rotated.
    for (llama_kv_cache* cache : {pair->kv_base.get(), pair->kv_swa.get()}) {
      if (cache == nullptr || cache->n_stream != 1 || cache->other != nullptr) {
        return "the sliding-window KV cache pair has several streams";
      }
    }
    for (llama_kv_cache* cache : {pair->kv_base.get(), pair->kv_swa.get()}) {
      const std::string reason = rotateCacheShiftedCells(shifter, cache, sequenceId, rotatedCells);
      // A cache left unrotated keeps its shifts, which llama.cpp's own update applies to it alone.
      if (!reason.empty()) return reason;
    }
    return "";
  }
  return "the context's memory is neither a llama_kv_cache nor a sliding-window pair of them";
}

// Only the struct: a scheduler still held is leaked, not freed at a time when the backends'
// libraries may be shutting down. (ggml_backend_sched_free touches only the scheduler's own
// buffers, never its backends, which is why releaseKeyShifter is safe even after the context.)
void finalizeKeyShifter(napi_env, void* data, void*) {
  delete static_cast<KeyShifter*>(data);
}

// createKeyShifter(nativeContext, nativeModel) -> a handle, or a string: why there is none (then
// llama.cpp's own K-shift is used).
napi_value CreateKeyShifter(napi_env env, napi_callback_info info) {
  Call<2> call;
  if (!beginCall(env, info, call)) return nullptr;
  std::string reason;
  if (!keyShift.resolved) reason = "libllama lacks " + keyShift.missing;
  llama_context* context = call.context;
  // ggml's scheduler requires the CPU backend last, as llama.cpp orders them.
  if (reason.empty() &&
      (context->backend_ptrs.empty() || context->backend_ptrs.size() != context->backend_buft.size() ||
       keyShift.deviceType(keyShift.backendDevice(context->backend_ptrs.back())) != GGML_BACKEND_DEVICE_TYPE_CPU)) {
    reason = "the context's backends are not as expected";
  }
  napi_value result;
  if (!reason.empty()) {
    napi_create_string_utf8(env, reason.c_str(), reason.size(), &result);
    return result;
  }
  auto* shifter = new KeyShifter();
  shifter->context = context;
  // Two nodes per layer (the view and its rotation): room for a thousand layers.
  shifter->graphSize = 2048;
  shifter->scheduler = keyShift.schedulerNew(context->backend_ptrs.data(), context->backend_buft.data(),
                                             static_cast<int>(context->backend_ptrs.size()), shifter->graphSize,
                                             false, context->cparams.op_offload);
  if (shifter->scheduler == nullptr) {
    delete shifter;
    const std::string failure = "ggml could not make a scheduler for the K-shift";
    napi_create_string_utf8(env, failure.c_str(), failure.size(), &result);
    return result;
  }
  napi_create_external(env, shifter, finalizeKeyShifter, nullptr, &result);
  return result;
}

KeyShifter* shifterFromArgument(napi_env env, napi_value value) {
  napi_valuetype type;
  if (napi_typeof(env, value, &type) != napi_ok || type != napi_external) return nullptr;
  void* data = nullptr;
  napi_get_value_external(env, value, &data);
  return static_cast<KeyShifter*>(data);
}

// releaseKeyShifter(shifter): frees its scheduler now (before the context it was made for).
napi_value ReleaseKeyShifter(napi_env env, napi_callback_info info) {
  size_t count = 1;
  napi_value argument;
  napi_get_cb_info(env, info, &count, &argument, nullptr, nullptr);
  KeyShifter* shifter = count < 1 ? nullptr : shifterFromArgument(env, argument);
  if (shifter == nullptr) return throwError(env, "releaseKeyShifter: expected a key shifter");
  if (shifter->scheduler != nullptr) keyShift.schedulerFree(shifter->scheduler);
  shifter->scheduler = nullptr;
  shifter->context = nullptr;
  return nullptr;
}

// applyPendingKeyShifts(nativeContext, nativeModel, sequenceId, shifter) -> number of cells in
// the rotated ranges (0: none pending), or a string: why llama.cpp is left to shift the whole cache.
napi_value ApplyPendingKeyShifts(napi_env env, napi_callback_info info) {
  Call<4> call;
  if (!beginCall(env, info, call)) return nullptr;
  int32_t sequenceId = 0;
  if (call.count < 4 || !readInt32(env, call.arguments[2], sequenceId)) {
    return throwError(env, "applyPendingKeyShifts: sequenceId must be an integer");
  }
  KeyShifter* shifter = shifterFromArgument(env, call.arguments[3]);
  if (shifter == nullptr || shifter->scheduler == nullptr || shifter->context != call.context) {
    return throwError(env, "applyPendingKeyShifts: the key shifter is released or was made for another context");
  }
  int64_t rotatedCells = 0;
  const std::string reason = rotateShiftedCells(*shifter, sequenceId, rotatedCells);
  if (!reason.empty() && reason[0] == '!') return throwError(env, "applyPendingKeyShifts: " + reason.substr(1));
  napi_value result;
  if (reason.empty()) {
    napi_create_int64(env, rotatedCells, &result);
  } else {
    napi_create_string_utf8(env, reason.c_str(), reason.size(), &result);
  }
  return result;
}

// describe(nativeContext, nativeModel) -> { contextSize, vocabularySize, library }
napi_value Describe(napi_env env, napi_callback_info info) {
  Call<2> call;
  if (!beginCall(env, info, call)) return nullptr;
  napi_value result, contextSize, vocabularySize, library;
  napi_create_object(env, &result);
  napi_create_uint32(env, functions.contextSize(call.context), &contextSize);
  napi_create_int32(env, vocabularySizeOf(call.context), &vocabularySize);
  napi_create_string_utf8(env, functions.libraryPath.c_str(), functions.libraryPath.size(), &library);
  napi_set_named_property(env, result, "contextSize", contextSize);
  napi_set_named_property(env, result, "vocabularySize", vocabularySize);
  napi_set_named_property(env, result, "library", library);
  return result;
}

napi_value Initialize(napi_env env, napi_value exports) {
  const napi_property_descriptor properties[] = {
      {"readLogits", nullptr, ReadLogits, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"divideSequencePositions", nullptr, DivideSequencePositions, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"readSequencePositions", nullptr, ReadSequencePositions, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"describe", nullptr, Describe, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"createKeyShifter", nullptr, CreateKeyShifter, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"applyPendingKeyShifts", nullptr, ApplyPendingKeyShifts, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"releaseKeyShifter", nullptr, ReleaseKeyShifter, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof(properties) / sizeof(properties[0]), properties);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Initialize)
