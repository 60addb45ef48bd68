// Writes every tensor of a GGUF file as float32, dequantised by ggml's own to_float for its type:
// the independent expectation for @self-extend/models' dequantiser. Built by llama-quantize.ts
// against node-llama-cpp's prebuilt libggml-base.
//
// Usage: ggml-dequantize-tensors <model.gguf> <out.f32>
// Prints one line per tensor, "<name>\t<type id>\t<element count>", in file order; <out.f32>
// holds their values back to back in the same order (host byte order: little-endian here).
#include "ggml.h"
#include "gguf.h"

#include <algorithm>
#include <cstdio>
#include <vector>

int main(int argc, char ** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: %s <model.gguf> <out.f32>\n", argv[0]);
        return 2;
    }
    gguf_init_params params = { /*no_alloc =*/ true, /*ctx =*/ nullptr };
    gguf_context * gguf = gguf_init_from_file(argv[1], params);
    if (gguf == nullptr) {
        std::fprintf(stderr, "cannot read %s as GGUF\n", argv[1]);
        return 1;
    }
    FILE * input = std::fopen(argv[1], "rb");
    FILE * output = std::fopen(argv[2], "wb");
    if (input == nullptr || output == nullptr) {
        std::fprintf(stderr, "cannot open %s or %s\n", argv[1], argv[2]);
        return 1;
    }
    const size_t data_offset = gguf_get_data_offset(gguf);
    for (int64_t id = 0; id < gguf_get_n_tensors(gguf); id++) {
        const ggml_type type = gguf_get_tensor_type(gguf, id);
        const int64_t * ne = gguf_get_tensor_ne(gguf, id);
        const int64_t count = ne[0] * ne[1] * ne[2] * ne[3];
        std::vector<unsigned char> bytes(gguf_get_tensor_size(gguf, id));
        std::vector<float> values(count);
        if (std::fseek(input, (long) (data_offset + gguf_get_tensor_offset(gguf, id)), SEEK_SET) != 0 ||
            std::fread(bytes.data(), 1, bytes.size(), input) != bytes.size()) {
            std::fprintf(stderr, "cannot read tensor %s\n", gguf_get_tensor_name(gguf, id));
            return 1;
        }
        const ggml_type_traits * traits = ggml_get_type_traits(type);
        if (type == GGML_TYPE_F32) {
            std::copy((const float *) bytes.data(), (const float *) bytes.data() + count, values.begin());
        } else if (traits->to_float != nullptr) {
            traits->to_float(bytes.data(), values.data(), count);
        } else {
            std::fprintf(stderr, "ggml has no to_float for type %d\n", (int) type);
            return 1;
        }
        std::fwrite(values.data(), sizeof(float), count, output);
        std::printf("%s\t%d\t%lld\n", gguf_get_tensor_name(gguf, id), (int) type, (long long) count);
    }
    std::fclose(output);
    std::fclose(input);
    gguf_free(gguf);
    return 0;
}
