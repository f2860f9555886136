// The fmg program: flow matching and semi-discrete optimal transport from a
// Gaussian to a mixture of Dirac masses.
#include <CLI/CLI.hpp>

#include <exception>
#include <new>
#include <iostream>

#include "host/cli/common.hpp"
#include "host/errors.hpp"
#include "host/io/atomic_file.hpp"

int main(int argc, char** argv) {
  using namespace fmg::cli;
  CLI::App app{
      "fmg: batch sampler for flow matching from N(0, I) to a mixture of "
      "Dirac masses, and for the semi-discrete optimal transport map between "
      "the same laws"};
  app.set_version_flag("--version", std::string("fmg ") + FMG_VERSION);
  app.require_subcommand(1);
  add_sample_command(app);
  add_field_command(app);
  add_density_command(app);
  add_crosscheck_command(app);
  add_ot_command(app);

  fmg::remove_outputs_on_termination_signals();
  try {
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
  return exit_ok;
}
