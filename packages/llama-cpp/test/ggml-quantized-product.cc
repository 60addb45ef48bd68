// One quantized matrix product on ggml's CPU backend, with what is needed to explain its result.
// Built by llama-quantize.ts against node-llama-cpp's prebuilt ggml; run with the library folder as
// the working folder so ggml finds its CPU backend variants there.
//
// Usage: ggml-quantized-product <weight type id> <activation type id> <K> <N> <M> <in.f32> <out.f32>
// <in.f32>: N*K weights (N rows of K) then M*K activations (M rows of K), float32.
// <out.f32>: N*K weights after quantizing to the weight type and back (ggml's quantize_chunk and
// to_float); M*K activations after ggml's reference quantization to the activation type (8, Q8_0;
// 9, Q8_1; 15, Q8_K) and back; M*N products mul_mat(quantized weights, float32 activations) as the
// CPU backend computes them; then, per block of 32 values, N*K/32 weight minima (the F16 m of
// Q4_1/Q5_1 blocks, 0 for other types) and M*K/32 activation sums (the F16 s a Q8_1 block stores,
// which ggml's Q4_1/Q5_1 products use for the minimum's term; the plain sum for other types).
#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "ggml.h"

#include <cstdio>
#include <cstdlib>
#include <vector>

// ggml-base's reference quantizers of the 8-bit activation formats and their inverses (declared in
// ggml's internal ggml-quants.h, exported by libggml-base; blocks are passed as bytes here).
extern "C" {
void quantize_row_q8_0_ref(const float * x, void * y, int64_t k);
void quantize_row_q8_1_ref(const float * x, void * y, int64_t k);
void quantize_row_q8_K_ref(const float * x, void * y, int64_t k);
void dequantize_row_q8_0(const void * x, float * y, int64_t k);
void dequantize_row_q8_K(const void * x, float * y, int64_t k);
}

// Q8_1 (no to_float in ggml): 32 values per 36-byte block, F16 d, F16 sum, 32 int8 q; x = d * q.
static void dequantize_q8_1(const unsigned char * blocks, float * y, int64_t k) {
    for (int64_t block = 0; block < k / 32; block++) {
        const unsigned char * start = blocks + 36 * block;
        const float d = ggml_fp16_to_fp32(*(const ggml_fp16_t *) start);
        for (int i = 0; i < 32; i++) y[32 * block + i] = d * (float) (int8_t) start[4 + i];
    }
}

int main(int argc, char ** argv) {
    if (argc != 8) {
        std::fprintf(stderr, "usage: %s <weight type> <activation type> <K> <N> <M> <in.f32> <out.f32>\n", argv[0]);
        return 2;
    }
    const ggml_type weight_type = (ggml_type) std::atoi(argv[1]);
    const ggml_type activation_type = (ggml_type) std::atoi(argv[2]);
    const int64_t k = std::atoll(argv[3]), n = std::atoll(argv[4]), m = std::atoll(argv[5]);
    std::vector<float> weights(n * k), activations(m * k);
    FILE * input = std::fopen(argv[6], "rb");
    if (input == nullptr || std::fread(weights.data(), sizeof(float), weights.size(), input) != weights.size() ||
        std::fread(activations.data(), sizeof(float), activations.size(), input) != activations.size()) {
        std::fprintf(stderr, "cannot read %s\n", argv[6]);
        return 1;
    }
    std::fclose(input);

    std::vector<unsigned char> quantized(ggml_row_size(weight_type, k) * n);
    ggml_quantize_chunk(weight_type, weights.data(), quantized.data(), 0, n, k, nullptr);
    std::vector<float> weights_back(n * k);
    ggml_get_type_traits(weight_type)->to_float(quantized.data(), weights_back.data(), n * k);

    std::vector<unsigned char> activation_blocks(ggml_row_size(activation_type, k) * m);
    std::vector<float> activations_back(m * k);
    std::vector<float> activation_sums(m * k / 32, 0.0f);
    if (activation_type == GGML_TYPE_Q8_0) {
        quantize_row_q8_0_ref(activations.data(), activation_blocks.data(), m * k);
        dequantize_row_q8_0(activation_blocks.data(), activations_back.data(), m * k);
    } else if (activation_type == GGML_TYPE_Q8_1) {
        quantize_row_q8_1_ref(activations.data(), activation_blocks.data(), m * k);
        dequantize_q8_1(activation_blocks.data(), activations_back.data(), m * k);
        for (int64_t block = 0; block < m * k / 32; block++) {
            activation_sums[block] = ggml_fp16_to_fp32(*(const ggml_fp16_t *) (activation_blocks.data() + 36 * block + 2));
        }
    } else if (activation_type == GGML_TYPE_Q8_K) {
        quantize_row_q8_K_ref(activations.data(), activation_blocks.data(), m * k);
        dequantize_row_q8_K(activation_blocks.data(), activations_back.data(), m * k);
    } else {
        std::fprintf(stderr, "activation type %d is not Q8_0, Q8_1 or Q8_K\n", (int) activation_type);
        return 2;
    }
    if (activation_type != GGML_TYPE_Q8_1) {
        for (int64_t index = 0; index < m * k; index++) activation_sums[index / 32] += activations_back[index];
    }
    // Q4_1 and Q5_1 blocks (32 values) start with F16 d, then F16 m.
    std::vector<float> weight_minima(n * k / 32, 0.0f);
    if (weight_type == GGML_TYPE_Q4_1 || weight_type == GGML_TYPE_Q5_1) {
        const size_t block_bytes = ggml_row_size(weight_type, 32);
        for (int64_t block = 0; block < n * k / 32; block++) {
            weight_minima[block] = ggml_fp16_to_fp32(*(const ggml_fp16_t *) (quantized.data() + block_bytes * block + 2));
        }
    }

    ggml_backend_load_all();
    ggml_backend_t backend = ggml_backend_init_by_type(GGML_BACKEND_DEVICE_TYPE_CPU, nullptr);
    if (backend == nullptr) {
        std::fprintf(stderr, "no ggml CPU backend\n");
        return 1;
    }
    ggml_init_params params = { /*mem_size =*/ 16 * ggml_tensor_overhead() + ggml_graph_overhead(),
                                /*mem_buffer =*/ nullptr, /*no_alloc =*/ true };
    ggml_context * context = ggml_init(params);
    ggml_tensor * weight_tensor = ggml_new_tensor_2d(context, weight_type, k, n);
    ggml_tensor * activation_tensor = ggml_new_tensor_2d(context, GGML_TYPE_F32, k, m);
    ggml_tensor * product = ggml_mul_mat(context, weight_tensor, activation_tensor);
    ggml_cgraph * graph = ggml_new_graph(context);
    ggml_build_forward_expand(graph, product);
    ggml_backend_buffer_t buffer = ggml_backend_alloc_ctx_tensors(context, backend);
    ggml_backend_tensor_set(weight_tensor, quantized.data(), 0, quantized.size());
    ggml_backend_tensor_set(activation_tensor, activations.data(), 0, activations.size() * sizeof(float));
    if (ggml_backend_graph_compute(backend, graph) != GGML_STATUS_SUCCESS) {
        std::fprintf(stderr, "graph compute failed\n");
        return 1;
    }
    std::vector<float> products(m * n);
    ggml_backend_tensor_get(product, products.data(), 0, products.size() * sizeof(float));

    FILE * output = std::fopen(argv[7], "wb");
    std::fwrite(weights_back.data(), sizeof(float), weights_back.size(), output);
    std::fwrite(activations_back.data(), sizeof(float), activations_back.size(), output);
    std::fwrite(products.data(), sizeof(float), products.size(), output);
    std::fwrite(weight_minima.data(), sizeof(float), weight_minima.size(), output);
    std::fwrite(activation_sums.data(), sizeof(float), activation_sums.size(), output);
    std::fclose(output);
    ggml_backend_buffer_free(buffer);
    ggml_free(context);
    ggml_backend_free(backend);
    return 0;
}
