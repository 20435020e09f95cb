// The HTTP layer: routes, authentication, CORS, error JSON, streaming.
#include "edgeq/server/http-server.h"

#include <httplib.h>

#include <atomic>
#include <filesystem>
#include <mutex>
#include <optional>

#include "edgeq/core/error.h"
#include "edgeq/core/log.h"
#include "edgeq/runtime/chat-session.h"
#include "edgeq/server/api.h"
#include "edgeq/server/chat-page.h"
#include "edgeq/tokenizer/chat-template.h"
#include "edgeq/tokenizer/tokenizer.h"

namespace edgeq::server {

using nlohmann::json;

namespace {

constexpr const char* k_json = "application/json";

// The model and what serving it needs, made once by load_model().
struct Served {
    std::unique_ptr<LoadedModel> model;
    std::optional<ChatTemplate> chat_template;
    std::string bos_text, eos_text;
    std::unique_ptr<Scheduler> scheduler;
};

std::string metadata_string(const GgufFile& file, const char* key) {
    const GgufValue* v = file.find(key);
    return v != nullptr && v->type() == GgufType::string ? v->to_string() : std::string();
}

// The endpoint label of /metrics: known routes, everything else as "other".
std::string endpoint_label(const std::string& path) {
    static const char* const k_known[] = {"/v1/chat/completions",
                                          "/v1/completions",
                                          "/v1/embeddings",
                                          "/v1/models",
                                          "/health",
                                          "/metrics",
                                          "/tokenize",
                                          "/detokenize",
                                          "/"};
    for (const char* known : k_known)
        if (path == known) return known;
    return "other";
}

void send_json(httplib::Response& res, int status, const json& body) {
    res.status = status;
    res.set_content(dump(body), k_json);
}

void send_error(httplib::Response& res, const ApiError& e) {
    if (e.status == 503) res.set_header("Retry-After", "1");
    send_json(res, e.status, error_body(e));
}

int64_t unix_time() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace

struct HttpServer::Impl {
    ServerOptions options;
    httplib::Server http;
    Metrics metrics;
    std::string model_id;
    std::string model_file;  // the file name, also accepted as the model's id
    std::atomic<bool> ready{false};
    std::atomic<bool> stopping{false};
    std::unique_ptr<Served> served;  // set before `ready`
    int64_t created = unix_time();
    std::atomic<uint64_t> next_id{1};
    std::mutex stop_mutex;

    explicit Impl(const ServerOptions& o);
    void routes();
    void guarded(const httplib::Request& req, httplib::Response& res,
                 const std::function<void()>& handler);
    std::string new_id(const char* prefix) {
        return fmt::format("{}-{:x}{:08x}", prefix, created, next_id.fetch_add(1));
    }
    void check_model(const std::string& requested) const;

    void completion(const httplib::Request& req, httplib::Response& res, bool chat);
    void embeddings(const httplib::Request& req, httplib::Response& res);
    void tokenize(const httplib::Request& req, httplib::Response& res);
    void detokenize(const httplib::Request& req, httplib::Response& res);
    void models(httplib::Response& res);
};

HttpServer::Impl::Impl(const ServerOptions& o) : options(o) {
    model_file = std::filesystem::path(options.model_path).filename().string();
    model_id = options.alias;
    if (model_id.empty()) {
        model_id = model_file;
        if (model_id.size() > 5 && model_id.ends_with(".gguf"))
            model_id.resize(model_id.size() - 5);
    }
    routes();
}

void HttpServer::Impl::check_model(const std::string& requested) const {
    if (requested.empty() || requested == model_id || requested == model_file) return;
    throw ApiError(
        404,
        fmt::format("the model '{}' does not exist; this server serves '{}'", requested, model_id),
        "model", "invalid_request_error", "model_not_found");
}

// Runs a handler; every failure becomes an error JSON, never an escaping exception.
void HttpServer::Impl::guarded(const httplib::Request& req, httplib::Response& res,
                               const std::function<void()>& handler) {
    try {
        handler();
    } catch (const ApiError& e) {
        send_error(res, e);
    } catch (const Error& e) {
        // The engine's refusals of what a request asked (a template that raises, a
        // conversation too long...) are the client's to fix.
        send_json(res, 400, error_body(e.what(), "invalid_request_error"));
    } catch (const std::bad_alloc&) {
        res.set_header("Retry-After", "1");
        send_json(res, 503, error_body("out of memory", "server_error", "", "out_of_memory"));
    } catch (const std::exception& e) {
        log_warn("serve: {} {}: {}", req.method, req.path, e.what());
        send_json(res, 500, error_body(e.what(), "server_error"));
    }
}

void HttpServer::Impl::routes() {
    http.set_payload_max_length(options.max_body_bytes);
    http.set_read_timeout(10, 0);
    http.set_write_timeout(10, 0);
    http.set_keep_alive_timeout(2);
    http.set_keep_alive_max_count(1000);
    const int n_threads = options.http_threads > 0
                              ? options.http_threads
                              : options.scheduler.n_slots + options.scheduler.max_queue + 16;
    http.new_task_queue = [n_threads] { return new httplib::ThreadPool(n_threads); };

    http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
        metrics.count_request(endpoint_label(req.path), res.status);
    });
    http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty()) return;
        std::string message = fmt::format("HTTP {}", res.status);
        if (res.status == 404)
            message = fmt::format("no such endpoint: {} {}", req.method, req.path);
        if (res.status == 413) message = "the request body is too large";
        if (res.status == 400) message = "malformed HTTP request";
        res.set_content(dump(error_body(message, "invalid_request_error")), k_json);
    });
    http.set_exception_handler(
        [](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
            send_json(res, 500, error_body("internal error", "server_error"));
        });

    http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
        if (!options.cors_origin.empty() && req.has_header("Origin")) {
            const std::string origin = req.get_header_value("Origin");
            if (options.cors_origin == "*" || origin == options.cors_origin) {
                res.set_header("Access-Control-Allow-Origin",
                               options.cors_origin == "*" ? "*" : origin);
                res.set_header("Vary", "Origin");
                if (req.method == "OPTIONS") {
                    res.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
                    res.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type");
                    res.set_header("Access-Control-Max-Age", "600");
                    res.status = 204;
                    return httplib::Server::HandlerResponse::Handled;
                }
            }
        }
        const bool exempt = req.path == "/health" || req.path == "/";
        if (!options.api_key.empty() && !exempt) {
            const std::string given = req.get_header_value("Authorization");
            if (!constant_time_equal(given, "Bearer " + options.api_key)) {
                res.set_header("WWW-Authenticate", "Bearer");
                res.set_header("Connection", "close");  // the body was not read
                send_json(res, 401,
                          error_body("invalid or missing API key (Authorization: Bearer KEY)",
                                     "authentication_error", "", "invalid_api_key"));
                return httplib::Server::HandlerResponse::Handled;
            }
        }
        if (stopping.load() && req.path != "/health") {
            res.set_header("Connection", "close");
            res.set_header("Retry-After", "1");
            send_json(
                res, 503,
                error_body("the server is shutting down", "server_error", "", "shutting_down"));
            return httplib::Server::HandlerResponse::Handled;
        }
        if (!ready.load() && req.path != "/health" && req.path != "/" && req.path != "/metrics") {
            res.set_header("Connection", "close");
            res.set_header("Retry-After", "1");
            send_json(res, 503,
                      error_body("the model is loading", "server_error", "", "model_loading"));
            return httplib::Server::HandlerResponse::Handled;
        }
        return httplib::Server::HandlerResponse::Unhandled;
    });

    http.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
        if (stopping.load()) {
            send_json(res, 503, {{"status", "shutting down"}});
        } else if (!ready.load()) {
            res.set_header("Retry-After", "1");
            send_json(res, 503, {{"status", "loading"}});
        } else {
            send_json(res, 200, {{"status", "ok"}});
        }
    });
    http.Get("/", [](const httplib::Request&, httplib::Response& res) {
        const std::string_view page = chat_page_html();
        res.set_content(page.data(), page.size(), "text/html; charset=utf-8");
    });
    http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
        const Scheduler* s = ready.load() ? served->scheduler.get() : nullptr;
        res.set_content(metrics.render(s ? s->queue_depth() : 0, s ? s->active_slots() : 0,
                                       s ? s->n_slots() : options.scheduler.n_slots),
                        "text/plain; version=0.0.4");
    });
    http.Get("/v1/models", [this](const httplib::Request& req, httplib::Response& res) {
        guarded(req, res, [&] { models(res); });
    });
    http.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
        guarded(req, res, [&] { completion(req, res, true); });
    });
    http.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
        guarded(req, res, [&] { completion(req, res, false); });
    });
    http.Post("/v1/embeddings", [this](const httplib::Request& req, httplib::Response& res) {
        guarded(req, res, [&] { embeddings(req, res); });
    });
    http.Post("/tokenize", [this](const httplib::Request& req, httplib::Response& res) {
        guarded(req, res, [&] { tokenize(req, res); });
    });
    http.Post("/detokenize", [this](const httplib::Request& req, httplib::Response& res) {
        guarded(req, res, [&] { detokenize(req, res); });
    });
}

void HttpServer::Impl::models(httplib::Response& res) {
    const LoadedModel& m = *served->model;
    json model = {{"id", model_id},
                  {"object", "model"},
                  {"created", created},
                  {"owned_by", "edgeq"},
                  {"meta",
                   {{"file", model_file},
                    {"architecture", metadata_string(m.file(), "general.architecture")},
                    {"n_vocab", m.n_vocab()},
                    {"n_ctx_train", m.n_ctx_train()},
                    {"n_ctx", served->scheduler->n_ctx()},
                    {"n_slots", served->scheduler->n_slots()}}}};
    send_json(res, 200, {{"object", "list"}, {"data", json::array({model})}});
}

namespace {

// What a streamed response has sent so far.
struct StreamState {
    std::shared_ptr<GenerationJob> job;
    bool sent_role = false;
    bool finished = false;
    Clock::time_point last_write = Clock::now();
};

bool write_event(httplib::DataSink& sink, const std::string& data) {
    const std::string event = "data: " + data + "\n\n";
    return sink.write(event.data(), event.size());
}

}  // namespace

void HttpServer::Impl::completion(const httplib::Request& req, httplib::Response& res, bool chat) {
    const json body = parse_body(req.body);
    const CompletionRequest r = chat ? parse_chat_request(body, options.sampling)
                                     : parse_completion_request(body, options.sampling);
    check_model(r.model);
    const LoadedModel& model = *served->model;
    const Tokenizer& tok = model.tokenizer();
    Scheduler& scheduler = *served->scheduler;
    const char* prompt_param = chat ? "messages" : "prompt";

    std::vector<int32_t> prompt;
    if (chat) {
        if (!served->chat_template)
            throw ApiError(400, "this model has no usable chat template; use /v1/completions");
        const std::string text =
            served->chat_template->render(r.messages, true, served->bos_text, served->eos_text);
        prompt = tok.encode(text, false, true);
    } else if (!r.prompt_ids.empty()) {
        for (size_t i = 0; i < r.prompt_ids.size(); ++i)
            if (r.prompt_ids[i] >= model.n_vocab())
                throw ApiError(400,
                               fmt::format("'prompt[{}]' is not a token id (the vocabulary has {})",
                                           i, model.n_vocab()),
                               fmt::format("prompt[{}]", i));
        prompt = r.prompt_ids;
    } else {
        prompt = tok.encode(r.prompt, true, true);
    }
    if (prompt.empty())
        throw ApiError(400, fmt::format("'{}' has no tokens", prompt_param), prompt_param);
    const int64_t n_ctx = scheduler.n_ctx();
    const int64_t n_prompt = static_cast<int64_t>(prompt.size());
    if (n_prompt >= n_ctx)
        throw ApiError(400,
                       fmt::format("the prompt has {} tokens; the context holds {} (prompt and "
                                   "completion together)",
                                   n_prompt, n_ctx),
                       prompt_param, "invalid_request_error", "context_length_exceeded");
    int64_t max_tokens = r.max_tokens;
    if (max_tokens < 0) {
        max_tokens = n_ctx - n_prompt;
        if (options.n_predict > 0) max_tokens = std::min<int64_t>(max_tokens, options.n_predict);
    } else if (n_prompt + max_tokens > n_ctx) {
        throw ApiError(400,
                       fmt::format("'max_tokens' is {} but the context holds {} tokens and the "
                                   "prompt takes {} of them",
                                   max_tokens, n_ctx, n_prompt),
                       "max_tokens", "invalid_request_error", "context_length_exceeded");
    } else if (options.n_predict > 0 && max_tokens > options.n_predict) {
        throw ApiError(
            400,
            fmt::format("'max_tokens' is {}; this server generates at most {} (--n-predict)",
                        max_tokens, options.n_predict),
            "max_tokens");
    }

    auto job = std::make_shared<GenerationJob>();
    job->prompt = std::move(prompt);
    job->sampling = r.sampling;
    job->max_tokens = static_cast<int32_t>(max_tokens);
    job->stops = r.stops;
    job->ignore_eos = r.ignore_eos;
    job->t_submit = Clock::now();
    job->deadline =
        job->t_submit + std::chrono::milliseconds(static_cast<int64_t>(options.timeout_s * 1000.0));
    if (!scheduler.submit(job))
        throw ApiError(503,
                       stopping.load() ? "the server is shutting down"
                                       : "the server is busy (every slot and the queue are full)",
                       "", "server_error", stopping.load() ? "shutting_down" : "queue_full");

    const std::string id = new_id(chat ? "chatcmpl" : "cmpl");
    const int64_t created_at = unix_time();
    const char* object = chat ? "chat.completion" : "text_completion";
    auto usage = [n_prompt](int32_t n_generated) {
        return json{{"prompt_tokens", n_prompt},
                    {"completion_tokens", n_generated},
                    {"total_tokens", n_prompt + n_generated}};
    };
    auto finish_name = [](FinishReason reason) {
        return reason == FinishReason::stop ? "stop" : "length";  // a timeout ends as "length"
    };

    if (!r.stream) {
        std::string text;
        GenerationJob::Output out;
        while (true) {
            out = job->take(std::chrono::milliseconds(250));
            text += out.text;
            if (out.done) break;
            if (!out.started && Clock::now() >= job->deadline) {
                job->cancel();
                throw ApiError(503, "timed out waiting for a free slot", "", "server_error",
                               "timeout");
            }
        }
        if (out.finish == FinishReason::cancelled)
            throw ApiError(503, "the server is shutting down", "", "server_error", "shutting_down");
        if (out.finish == FinishReason::timeout && out.n_generated == 0 && text.empty())
            throw ApiError(503, "timed out waiting for a free slot", "", "server_error", "timeout");
        if (out.finish == FinishReason::error)
            throw std::runtime_error("generation failed: " + out.error);
        json choice = {
            {"index", 0}, {"logprobs", nullptr}, {"finish_reason", finish_name(out.finish)}};
        if (chat) {
            choice["message"] = {{"role", "assistant"}, {"content", text}};
        } else {
            choice["text"] = text;
        }
        send_json(res, 200,
                  {{"id", id},
                   {"object", object},
                   {"created", created_at},
                   {"model", model_id},
                   {"choices", json::array({choice})},
                   {"usage", usage(out.n_generated)}});
        return;
    }

    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Accel-Buffering", "no");
    auto state = std::make_shared<StreamState>();
    state->job = job;
    const bool include_usage = r.include_usage;
    const std::string model_name = model_id;
    auto chunk = [=](const json& delta_or_text, const json& finish) {
        json choice = {{"index", 0}, {"logprobs", nullptr}, {"finish_reason", finish}};
        if (chat) {
            choice["delta"] = delta_or_text;
        } else {
            choice["text"] = delta_or_text;
        }
        return json{{"id", id},
                    {"object", chat ? "chat.completion.chunk" : "text_completion"},
                    {"created", created_at},
                    {"model", model_name},
                    {"choices", json::array({choice})}};
    };
    res.set_chunked_content_provider(
        "text/event-stream",
        [=](size_t, httplib::DataSink& sink) {
            StreamState& st = *state;
            if (st.finished) return false;
            GenerationJob::Output out = st.job->take(std::chrono::milliseconds(100));
            const Clock::time_point now = Clock::now();
            bool ok = true;
            if (chat && !st.sent_role && (out.started || out.done)) {
                ok = write_event(sink,
                                 dump(chunk({{"role", "assistant"}, {"content", ""}}, nullptr)));
                st.sent_role = true;
            }
            if (ok && !out.text.empty())
                ok = write_event(
                    sink,
                    dump(chunk(chat ? json{{"content", out.text}} : json(out.text), nullptr)));
            if (ok && !out.done && !out.started && now >= st.job->deadline) {
                st.job->cancel();
                out.done = true;
                out.finish = FinishReason::timeout;
            }
            if (ok && out.done) {
                if (out.finish == FinishReason::stop || out.finish == FinishReason::length ||
                    (out.finish == FinishReason::timeout && out.started)) {
                    ok = write_event(sink, dump(chunk(chat ? json::object() : json(""),
                                                      finish_name(out.finish))));
                    if (ok && include_usage) {
                        json last = chunk(json::object(), nullptr);
                        last["choices"] = json::array();
                        last["usage"] = usage(out.n_generated);
                        ok = write_event(sink, dump(last));
                    }
                } else {
                    const std::string message = out.finish == FinishReason::error
                                                    ? "generation failed: " + out.error
                                                : out.finish == FinishReason::cancelled
                                                    ? "the server is shutting down"
                                                    : "timed out waiting for a free slot";
                    ok = write_event(sink, dump(error_body(message, "server_error")));
                }
                if (ok) ok = write_event(sink, "[DONE]");
                st.finished = true;
                if (ok) sink.done();
            } else if (ok && now - st.last_write > std::chrono::seconds(1)) {
                // An SSE comment (clients skip it) after a second of silence, queued or in a
                // long prompt: a write to a client that has gone fails and frees the slot.
                static constexpr char k_ping[] = ": waiting\n\n";
                ok = sink.write(k_ping, sizeof(k_ping) - 1);
                st.last_write = now;
            }
            if (ok && !out.text.empty()) st.last_write = now;
            if (!ok) st.job->cancel();  // the client has gone: free its slot
            return ok;
        },
        [state](bool) { state->job->cancel(); });
}

void HttpServer::Impl::embeddings(const httplib::Request& req, httplib::Response& res) {
    const EmbeddingRequest r = parse_embedding_request(parse_body(req.body));
    check_model(r.model);
    const Tokenizer& tok = served->model->tokenizer();
    Scheduler& scheduler = *served->scheduler;
    json data = json::array();
    int64_t n_tokens = 0;
    for (size_t i = 0; i < r.inputs.size(); ++i) {
        const std::vector<int32_t> ids = tok.encode(r.inputs[i], true, true);
        const std::string param = fmt::format("input[{}]", i);
        if (ids.empty()) throw ApiError(400, fmt::format("'{}' has no tokens", param), param);
        if (static_cast<int64_t>(ids.size()) > scheduler.n_ctx())
            throw ApiError(400,
                           fmt::format("'{}' has {} tokens; the context holds {}", param,
                                       ids.size(), scheduler.n_ctx()),
                           param, "invalid_request_error", "context_length_exceeded");
        n_tokens += static_cast<int64_t>(ids.size());
        const std::vector<float> e = scheduler.embed(ids);
        json item = {{"object", "embedding"}, {"index", i}};
        if (r.base64) {
            item["embedding"] = base64_encode(e.data(), e.size() * sizeof(float));
        } else {
            item["embedding"] = e;
        }
        data.push_back(std::move(item));
    }
    send_json(res, 200,
              {{"object", "list"},
               {"data", std::move(data)},
               {"model", model_id},
               {"usage", {{"prompt_tokens", n_tokens}, {"total_tokens", n_tokens}}}});
}

void HttpServer::Impl::tokenize(const httplib::Request& req, httplib::Response& res) {
    const TokenizeRequest r = parse_tokenize_request(parse_body(req.body));
    const Tokenizer& tok = served->model->tokenizer();
    const std::vector<int32_t> ids = tok.encode(r.content, r.add_special, r.parse_special);
    json tokens = json::array();
    for (int32_t id : ids) {
        if (r.with_pieces) {
            tokens.push_back({{"id", id}, {"piece", tok.piece(id, true)}});
        } else {
            tokens.push_back(id);
        }
    }
    send_json(res, 200, {{"tokens", std::move(tokens)}});
}

void HttpServer::Impl::detokenize(const httplib::Request& req, httplib::Response& res) {
    const Tokenizer& tok = served->model->tokenizer();
    const std::vector<int32_t> ids = parse_detokenize_request(parse_body(req.body), tok.n_vocab());
    StreamDecoder text(tok);
    std::string content;
    for (int32_t id : ids) content += text.push(id);
    content += text.flush();
    send_json(res, 200, {{"content", content}});
}

HttpServer::HttpServer(const ServerOptions& options) : impl_(std::make_unique<Impl>(options)) {}

HttpServer::~HttpServer() {
    stop();
}

int HttpServer::bind() {
    Impl& m = *impl_;
    if (m.options.port == 0) {
        const int port = m.http.bind_to_any_port(m.options.host);
        if (port <= 0) fail("serve: cannot listen on {} (any port)", m.options.host);
        return port;
    }
    if (m.options.port < 0 || m.options.port > 65535)
        fail("serve: --port must be 0..65535 (got {})", m.options.port);
    if (!m.http.bind_to_port(m.options.host, m.options.port))
        fail("serve: cannot listen on {}:{} (in use, or not an address of this machine)",
             m.options.host, m.options.port);
    return m.options.port;
}

void HttpServer::load_model() {
    Impl& m = *impl_;
    auto served = std::make_unique<Served>();
    served->model = LoadedModel::load(m.options.model_path);
    const LoadedModel& model = *served->model;
    const Tokenizer& tok = model.tokenizer();
    std::string source = metadata_string(model.file(), "tokenizer.chat_template");
    if (source.empty()) {
        const std::string arch = metadata_string(model.file(), "general.architecture");
        source = default_chat_template(arch);
        log_warn("serve: {} has no chat template; using a default for '{}'", m.model_file, arch);
    }
    try {
        served->chat_template.emplace(source);
    } catch (const Error& e) {
        log_warn(
            "serve: the model's chat template cannot be used ({}); chat completions will be "
            "refused",
            e.what());
    }
    if (tok.bos() >= 0) served->bos_text = tok.token_text(tok.bos());
    if (tok.eos() >= 0) served->eos_text = tok.token_text(tok.eos());
    SchedulerOptions scheduler = m.options.scheduler;
    if (scheduler.session.n_ctx <= 0) scheduler.session.n_ctx = model.n_ctx_train();
    scheduler.session.n_ctx = std::min(scheduler.session.n_ctx, model.n_ctx_train());
    served->scheduler = std::make_unique<Scheduler>(model, scheduler, m.metrics);
    {
        std::lock_guard lock(m.stop_mutex);
        if (m.stopping.load()) return;  // stopped while loading
        m.served = std::move(served);
        m.ready.store(true);
    }
}

void HttpServer::listen() {
    impl_->http.listen_after_bind();
}

void HttpServer::stop() {
    Impl& m = *impl_;
    {
        std::lock_guard lock(m.stop_mutex);
        m.stopping.store(true);
    }
    if (m.ready.load()) m.served->scheduler->shutdown();
    m.http.stop();
}

}  // namespace edgeq::server
