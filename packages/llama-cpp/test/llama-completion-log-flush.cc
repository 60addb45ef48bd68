// Linked into the llama-completion the compatible-mode tests build (test/llama-completion.ts).
//
// llama.cpp's common logger prints from a worker thread, and its singleton is deliberately leaked
// (common/log.cpp, common_log_main: "this design may cause logs to be lost if not flushed before
// the program exits"). llama-completion's main() returns without flushing it, so when the machine
// is loaded the worker can still hold the last generated tokens at exit: the process exits 0 with
// its output cut short (seen in about 1 run in 15 with both cores busy). llama-completion's own
// SIGINT path calls common_log_pause() for exactly this reason; this does the same at a normal
// exit. Nothing else about llama-completion changes.
#include "log.h"

namespace {
struct FlushLogsAtExit {
    ~FlushLogsAtExit() {
        // Queues an end marker and joins the worker, which prints everything queued before it.
        common_log_pause(common_log_main());
    }
} flushLogsAtExit;
}  // namespace
