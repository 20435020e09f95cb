// edgeq: convert, quantize, measure and run language models for edge hardware.
#include <cstdio>
#include <exception>
#include <new>

#include "commands.h"
#include "edgeq/core/error.h"
#include "edgeq/core/progress.h"
#include "edgeq/core/temp-files.h"

int main(int argc, char** argv) {
    CLI::App app{"edgeq: quantize, inspect and convert language models for edge hardware", "edgeq"};
    edgeq::install_temp_file_cleanup();
    app.require_subcommand(1);
    app.set_version_flag("--version", "edgeq 0.1.0");
    edgeq::cli::add_inspect(app);
    edgeq::cli::add_convert(app);
    edgeq::cli::add_quantize(app);
    edgeq::cli::add_tokenize(app);
    edgeq::cli::add_run(app);
    edgeq::cli::add_chat(app);
    edgeq::cli::add_bench(app);
    edgeq::cli::add_demo(app);
    edgeq::cli::add_imatrix(app);
    edgeq::cli::add_export(app);
    edgeq::cli::add_eval(app);
    edgeq::cli::add_serve(app);
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        edgeq::Progress::clear_line();
        std::fprintf(stderr, "edgeq: %s\nRun 'edgeq --help' for usage.\n", e.what());
        return 2;
    } catch (const edgeq::Error& e) {
        edgeq::Progress::clear_line();
        std::fprintf(stderr, "edgeq: error: %s\n", e.what());
        return 1;
    } catch (const std::bad_alloc&) {
        edgeq::Progress::clear_line();
        std::fprintf(stderr, "edgeq: error: out of memory\n");
        return 1;
    } catch (const std::exception& e) {
        edgeq::Progress::clear_line();
        std::fprintf(stderr, "edgeq: internal error: %s\n", e.what());
        return 3;
    }
    return 0;
}
