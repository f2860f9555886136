// The fmg program: flow matching and semi-discrete optimal transport from a
// Gaussian to a mixture of Dirac masses.
#include <CLI/CLI.hpp>

#include <exception>
#include <new>
#include <iostream>
#include <string>
#include <vector>

#include "host/cli/common.hpp"
#include "host/errors.hpp"
#include "host/io/atomic_file.hpp"

namespace {

// CLI11 reads an unknown first word as a stray positional argument and
// reports only that a subcommand is required, so this check names the word
// and lists the subcommands. Words that start with '-' are options, which
// CLI11 reports itself.
void reject_unknown_subcommand(CLI::App& app, int argc, char** argv) {
  if (argc < 2 || argv[1][0] == '-') return;
  const std::string word = argv[1];
  const std::vector<const CLI::App*> subcommands =
      static_cast<const CLI::App&>(app).get_subcommands(
          [](const CLI::App*) { return true; });
  std::string names;
  for (std::size_t i = 0; i < subcommands.size(); ++i) {
    if (subcommands[i]->check_name(word)) return;
    names += (i == 0 ? "" : i + 1 == subcommands.size() ? " and " : ", ") +
             subcommands[i]->get_name();
  }
  throw fmg::InvalidArgument("unknown subcommand '" + word +
                             "': valid subcommands are " + names +
                             "; run 'fmg --help' for what each does");
}

}  // namespace

int main(int argc, char** argv) {
  using namespace fmg::cli;
  CLI::App app{
      "fmg: batch sampler for flow matching from N(0, I) to a mixture of "
      "Dirac masses, and for the semi-discrete optimal transport map between "
      "the same laws"};
  app.set_version_flag("--version", std::string("fmg ") + FMG_VERSION);
  app.footer(
      "Exit status: 0 success; 1 numerical failure or memory running out during "
      "the run; 2 invalid option, value or input values, or a request found "
      "before the run to exceed the available memory; 3 a file that cannot be "
      "read or written, or that is not a valid .npy or mixture file, or whose "
      "dtype the option does not accept; 4 backend unavailable; 5 fmg ot "
      "stopped at --max-iterations above --tolerance, with its outputs written.");
  app.require_subcommand(1);
  add_sample_command(app);
  add_field_command(app);
  add_density_command(app);
  add_crosscheck_command(app);
  ExitStatus command_status = exit_ok;
  add_ot_command(app, command_status);

  fmg::remove_outputs_on_termination_signals();
  try {
    reject_unknown_subcommand(app, argc, argv);
    app.parse(argc, argv);
  } catch (const CLI::ConversionError& error) {
    std::cerr << "fmg: error: " << error.what()
              << ": the value is not a number of the option's type or is out "
                 "of its range; see --help\n";
    return exit_invalid_input;
  } catch (const CLI::ParseError& error) {
    // --help and --version arrive here with exit code 0.
    if (error.get_exit_code() == 0) return app.exit(error);
    std::cerr << "fmg: error: " << error.what()
              << "\nRun 'fmg --help' or 'fmg SUBCOMMAND --help' for the valid options.\n";
    return exit_invalid_input;
  } catch (const fmg::InvalidArgument& error) {
    std::cerr << "fmg: error: " << error.what() << "\n";
    return exit_invalid_input;
  } catch (const fmg::FileError& error) {
    std::cerr << "fmg: error: " << error.what() << "\n";
    return exit_file_error;
  } catch (const fmg::Unavailable& error) {
    std::cerr << "fmg: error: " << error.what() << "\n";
    return exit_unavailable;
  } catch (const std::bad_alloc&) {
    std::cerr << "fmg: error: out of memory; reduce the sizes requested "
                 "(samples with array outputs, grid, trajectories)\n";
    return exit_failure;
  } catch (const std::exception& error) {
    std::cerr << "fmg: error: " << error.what() << "\n";
    return exit_failure;
  }
  return command_status;
}
