// edgeq serve: the OpenAI-compatible HTTP API over the scheduler.
//
//   HttpServer server(options);
//   int port = server.bind();                   // 127.0.0.1 by default; port 0 picks one
//   std::thread loader([&] { server.load_model(); });   // /health answers 503 meanwhile
//   server.listen();                            // until stop() (from a signal thread)
//
// Endpoints: POST /v1/chat/completions, /v1/completions (stream or not), /v1/embeddings,
// /tokenize, /detokenize; GET /v1/models, /health, /metrics, / (the chat page). Every error
// is OpenAI's error JSON; nothing a client sends can stop the server.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "edgeq/runtime/sampler.h"
#include "edgeq/server/scheduler.h"

namespace edgeq::server {

struct ServerOptions {
    std::string model_path;
    std::string alias;  // the model's id in the API; empty: the file name without .gguf
    std::string host = "127.0.0.1";
    int port = 8080;          // 0: any free port (bind() says which)
    std::string api_key;      // empty: no authentication
    std::string cors_origin;  // empty: no CORS headers; "*" or one origin
    size_t max_body_bytes = size_t{1} << 20;
    double timeout_s = 600.0;  // a request's limit, waiting in the queue included
    int32_t n_predict = -1;    // the most tokens a request generates; -1: the context
    int http_threads = 0;      // 0: enough for every slot and queued request, plus spare
    SchedulerOptions scheduler;
    SamplingParams sampling;  // defaults of the requests' sampling fields
};

class HttpServer {
  public:
    explicit HttpServer(const ServerOptions& options);
    ~HttpServer();
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    // Binds the listening socket; returns the port. An Error if the address is taken.
    int bind();
    // Loads the model and starts the scheduler; until then the API answers 503. An Error if
    // the model cannot be loaded.
    void load_model();
    // Serves until stop(); returns once the socket is closed and every handler has returned.
    void listen();
    // Cancels queued and running requests and closes the socket. Thread-safe; idempotent.
    void stop();

    struct Impl;

  private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace edgeq::server
