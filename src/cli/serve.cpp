// edgeq serve MODEL: the OpenAI-compatible HTTP server. Prints "listening on http://HOST:PORT"
// on stdout once the socket is bound (the model loads afterwards; /health says when it is
// ready). SIGTERM or SIGINT: queued and running requests are cancelled, the socket closes, and
// the process exits 0.
#include <fmt/format.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <thread>

#include "commands.h"
#include "edgeq/core/error.h"
#include "edgeq/core/log.h"
#include "edgeq/server/http-server.h"

namespace edgeq::cli {

// The sampling flags, shared with edgeq run (defined in run.cpp).
void add_sampling_flags(CLI::App& cmd, SamplingParams& params);

namespace {

// A shutdown that has not finished in this time ends the process anyway.
constexpr int k_shutdown_grace_s = 4;

void serve(const server::ServerOptions& options) {
    // Signals are taken by one thread with sigtimedwait: every thread started from here on
    // inherits the blocked mask, so no handler runs inside the HTTP or engine threads.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    std::signal(SIGPIPE, SIG_IGN);  // a client that hangs up is a failed write, not a signal

    server::HttpServer http(options);
    const int port = http.bind();
    std::printf("edgeq serve: listening on http://%s:%d\n", options.host.c_str(), port);
    std::fflush(stdout);

    // stop() only closes a socket that listen() has opened, so a stop is repeated until
    // listen() returns: a signal or a failed load may come before it starts.
    std::atomic<bool> done{false};
    std::atomic<bool> stop_requested{false};
    std::atomic<bool> load_failed{false};
    std::thread loader([&] {
        try {
            http.load_model();
            log_info("serve: {} loaded; ready", options.model_path);
            std::fprintf(stderr, "edgeq serve: model loaded, ready\n");
        } catch (const std::exception& e) {
            std::fprintf(stderr, "edgeq: error: %s\n", e.what());
            load_failed.store(true);
            stop_requested.store(true);
        }
    });
    std::thread watcher([&] {
        const timespec poll{0, 50'000'000};
        while (!done.load() && !stop_requested.load()) {
            if (sigtimedwait(&signals, nullptr, &poll) <= 0) continue;
            std::fprintf(stderr, "edgeq serve: shutting down\n");
            std::thread([] {
                std::this_thread::sleep_for(std::chrono::seconds(k_shutdown_grace_s));
                std::fprintf(stderr, "edgeq serve: shutdown took too long; exiting\n");
                std::_Exit(0);
            }).detach();
            break;
        }
        while (!done.load()) {
            http.stop();
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    });
    http.listen();
    done.store(true);
    loader.join();
    watcher.join();
    if (load_failed.load()) fail("serve: the model could not be loaded");
}

}  // namespace

void add_serve(CLI::App& app) {
    auto options = std::make_shared<server::ServerOptions>();
    options->scheduler.session.n_ctx = 4096;
    options->scheduler.session.n_batch = 512;
    auto no_batch = std::make_shared<bool>(false);
    CLI::App* cmd = app.add_subcommand("serve", "Serve a GGUF model over an OpenAI-compatible API");
    cmd->add_option("model", options->model_path, "GGUF model file")->required();
    cmd->add_option("--host", options->host, "Address to listen on")->capture_default_str();
    cmd->add_option("--port", options->port, "Port; 0 picks a free one (printed)")
        ->capture_default_str();
    cmd->add_option("--alias", options->alias, "The model's id in the API (default: file name)");
    cmd->add_option("-c,--ctx-size", options->scheduler.session.n_ctx,
                    "Context per slot (at most the model's)")
        ->capture_default_str();
    cmd->add_option("-t,--threads", options->scheduler.session.n_threads, "Threads (default: all)");
    cmd->add_option("-b,--batch-size", options->scheduler.session.n_batch,
                    "Most tokens decoded in one step")
        ->capture_default_str();
    cmd->add_option("--parallel,--np", options->scheduler.n_slots, "Requests generated at once")
        ->capture_default_str();
    cmd->add_option("--queue", options->scheduler.max_queue,
                    "Requests that may wait for a slot; more get 503")
        ->capture_default_str();
    cmd->add_option("-n,--n-predict", options->n_predict,
                    "Most tokens a request may generate; -1: the context")
        ->capture_default_str();
    cmd->add_option("--api-key", options->api_key, "Require Authorization: Bearer KEY");
    cmd->add_option("--cors", options->cors_origin, "Allow this origin (or *) cross-origin");
    cmd->add_option("--max-body", options->max_body_bytes, "Largest request body in bytes")
        ->capture_default_str();
    cmd->add_option("--timeout", options->timeout_s, "Seconds a request may take, waiting included")
        ->capture_default_str();
    cmd->add_option("--http-threads", options->http_threads,
                    "HTTP worker threads (default: slots + queue + 16)");
    cmd->add_flag("--no-batch", *no_batch, "Decode slots one after another (for comparison)");
    add_sampling_flags(*cmd, options->sampling);
    cmd->callback([options, no_batch] {
        if (const char* key = std::getenv("EDGEQ_API_KEY"); key && options->api_key.empty())
            options->api_key = key;
        options->scheduler.batched = !*no_batch;
        if (options->timeout_s <= 0) fail("serve: --timeout must be positive");
        if (options->max_body_bytes < 1024) fail("serve: --max-body must be at least 1024");
        if (options->scheduler.session.n_batch < 1) fail("serve: --batch-size must be positive");
        serve(*options);
    });
}

}  // namespace edgeq::cli
