#include "host/io/atomic_file.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>

#include <gtest/gtest.h>

#include "host/errors.hpp"
#include "tests/io/io_test_support.hpp"

namespace fmg {
namespace {

using test::message_of;
using test::read_bytes;
using test::TempDirectory;
using test::write_bytes;

namespace fs = std::filesystem;

class AtomicFileTest : public ::testing::Test {
 protected:
  TempDirectory directory_;
};

TEST_F(AtomicFileTest, CommitWritesContents) {
  const std::string path = directory_.file("out.txt");
  AtomicFile file(path);

  file.stream() << "hello\n";
  file.commit();

  EXPECT_TRUE(file.committed());
  EXPECT_EQ(read_bytes(path), "hello\n");
  EXPECT_EQ(directory_.entries(), std::set<std::string>{"out.txt"});
}

TEST_F(AtomicFileTest, TemporaryIsHiddenInSameDirectory) {
  const std::string path = directory_.file("out.txt");

  AtomicFile file(path);

  const fs::path temporary(file.temporary_path());
  EXPECT_EQ(temporary.parent_path(), directory_.path());
  EXPECT_EQ(temporary.filename().string().rfind(".out.txt.tmp." + std::to_string(::getpid()) + ".", 0),
            0u);
  EXPECT_TRUE(fs::exists(temporary));
  EXPECT_FALSE(fs::exists(path));
}

TEST_F(AtomicFileTest, NoFileWithoutCommit) {
  const std::string path = directory_.file("out.txt");

  {
    AtomicFile file(path);
    file.stream() << "partial";
  }

  EXPECT_TRUE(directory_.entries().empty());
}

TEST_F(AtomicFileTest, NoFileWhenExceptionUnwinds) {
  const std::string path = directory_.file("out.txt");

  EXPECT_THROW(
      {
        AtomicFile file(path);
        file.stream() << "partial";
        throw std::runtime_error("computation failed");
      },
      std::runtime_error);

  EXPECT_TRUE(directory_.entries().empty());
}

TEST_F(AtomicFileTest, CommitReplacesExistingFile) {
  const std::string path = directory_.file("out.txt");
  write_bytes(path, "old");
  AtomicFile file(path);
  file.stream() << "new";

  EXPECT_EQ(read_bytes(path), "old");
  file.commit();

  EXPECT_EQ(read_bytes(path), "new");
}

TEST_F(AtomicFileTest, FailedStreamKeepsOldFile) {
  const std::string path = directory_.file("out.txt");
  write_bytes(path, "old");
  AtomicFile file(path);
  file.stream() << "new";
  file.stream().setstate(std::ios::badbit);

  const std::string message = message_of<FileError>([&] { file.commit(); });

  EXPECT_NE(message.find("failed to write output file '" + path + "'"), std::string::npos)
      << message;
  EXPECT_EQ(read_bytes(path), "old");
  EXPECT_EQ(directory_.entries(), std::set<std::string>{"out.txt"});
  EXPECT_FALSE(file.committed());
}

TEST_F(AtomicFileTest, MissingDirectoryFailsAtConstruction) {
  const std::string path = directory_.file("missing/out.npy");

  const std::string message = message_of<FileError>([&] { AtomicFile file(path); });

  EXPECT_NE(message.find("'" + path + "'"), std::string::npos) << message;
  EXPECT_NE(message.find("No such file or directory"), std::string::npos) << message;
}

TEST_F(AtomicFileTest, UnwritableDirectoryFailsAtConstruction) {
  if (::geteuid() == 0) {
    GTEST_SKIP() << "running as root, which may write to any directory";
  }
  const fs::path locked = directory_.path() / "locked";
  fs::create_directory(locked);
  fs::permissions(locked, fs::perms::owner_read | fs::perms::owner_exec);
  const std::string path = (locked / "out.npy").string();

  const std::string message = message_of<FileError>([&] { AtomicFile file(path); });

  EXPECT_NE(message.find("'" + path + "'"), std::string::npos) << message;
  EXPECT_NE(message.find("Permission denied"), std::string::npos) << message;
}

TEST_F(AtomicFileTest, DirectoryPathRejected) {
  const std::string path = directory_.path().string();

  const std::string message = message_of<FileError>([&] { AtomicFile file(path); });

  EXPECT_NE(message.find("is a directory"), std::string::npos) << message;
  EXPECT_TRUE(directory_.entries().empty());
}

TEST_F(AtomicFileTest, EmptyPathRejected) {
  EXPECT_THROW(AtomicFile(""), InvalidArgument);
}

TEST_F(AtomicFileTest, MovedFileCommits) {
  const std::string path = directory_.file("out.txt");
  AtomicFile original(path);
  original.stream() << "moved";

  AtomicFile moved(std::move(original));
  moved.commit();

  EXPECT_EQ(read_bytes(path), "moved");
  EXPECT_TRUE(original.temporary_path().empty());
}

TEST_F(AtomicFileTest, MoveAssignmentDiscardsTarget) {
  AtomicFile target(directory_.file("a.txt"));
  AtomicFile source(directory_.file("b.txt"));
  source.stream() << "b";

  target = std::move(source);
  target.commit();

  EXPECT_EQ(directory_.entries(), std::set<std::string>{"b.txt"});
}

TEST_F(AtomicFileTest, SecondCommitThrows) {
  AtomicFile file(directory_.file("out.txt"));
  file.commit();

  EXPECT_THROW(file.commit(), std::logic_error);
}

TEST_F(AtomicFileTest, WriteTextAtomically) {
  const std::string path = directory_.file("summary.json");

  write_text_atomically(path, "{}\n");

  EXPECT_EQ(read_bytes(path), "{}\n");
  EXPECT_EQ(directory_.entries(), std::set<std::string>{"summary.json"});
}

class OutputSetTest : public ::testing::Test {
 protected:
  TempDirectory directory_;
};

TEST_F(OutputSetTest, CommitAllWritesEveryFile) {
  OutputSet outputs;
  outputs.add(directory_.file("a.txt")).stream() << "a";
  outputs.add(directory_.file("b.txt")).stream() << "b";

  outputs.commit_all();

  EXPECT_EQ(read_bytes(directory_.file("a.txt")), "a");
  EXPECT_EQ(read_bytes(directory_.file("b.txt")), "b");
  EXPECT_EQ(directory_.entries(), (std::set<std::string>{"a.txt", "b.txt"}));
}

TEST_F(OutputSetTest, ReferencesStayValidAcrossAdds) {
  OutputSet outputs;
  AtomicFile& first = outputs.add(directory_.file("file0.txt"));
  for (int i = 1; i < 20; ++i) outputs.add(directory_.file("file" + std::to_string(i) + ".txt"));

  first.stream() << "first";
  outputs.commit_all();

  EXPECT_EQ(read_bytes(directory_.file("file0.txt")), "first");
  EXPECT_EQ(outputs.size(), 20u);
}

TEST_F(OutputSetTest, NoFileWhenExceptionUnwinds) {
  EXPECT_THROW(
      {
        OutputSet outputs;
        outputs.add(directory_.file("a.txt")).stream() << "a";
        outputs.add(directory_.file("b.txt")).stream() << "b";
        throw std::runtime_error("computation failed");
      },
      std::runtime_error);

  EXPECT_TRUE(directory_.entries().empty());
}

TEST_F(OutputSetTest, WriteErrorLeavesNoFile) {
  OutputSet outputs;
  outputs.add(directory_.file("a.txt")).stream() << "a";
  AtomicFile& second = outputs.add(directory_.file("b.txt"));
  second.stream().setstate(std::ios::badbit);

  EXPECT_THROW(outputs.commit_all(), FileError);

  EXPECT_TRUE(directory_.entries().empty());
}

TEST_F(OutputSetTest, RenameErrorRemovesEarlierFiles) {
  OutputSet outputs;
  outputs.add(directory_.file("a.txt")).stream() << "a";
  outputs.add(directory_.file("b.txt")).stream() << "b";
  // A directory created at the second path after staging makes its rename
  // fail after the first file is already in place.
  fs::create_directory(directory_.file("b.txt"));

  const std::string message = message_of<FileError>([&] { outputs.commit_all(); });

  EXPECT_NE(message.find(directory_.file("b.txt")), std::string::npos) << message;
  EXPECT_EQ(directory_.entries(), std::set<std::string>{"b.txt"});
  EXPECT_TRUE(fs::is_directory(directory_.file("b.txt")));
}

TEST_F(OutputSetTest, SamePathTwiceRejected) {
  OutputSet outputs;
  outputs.add(directory_.file("a.txt"));

  const std::string message =
      message_of<InvalidArgument>([&] { outputs.add(directory_.file("a.txt")); });

  EXPECT_NE(message.find(directory_.file("a.txt")), std::string::npos) << message;
  EXPECT_NE(message.find("twice"), std::string::npos) << message;
}

TEST_F(OutputSetTest, SamePathTwiceNamesBothOptions) {
  OutputSet outputs;
  outputs.add(directory_.file("x.npy"), "--endpoints-out");

  const std::string message = message_of<InvalidArgument>(
      [&] { outputs.add(directory_.file("x.npy"), "--labels-out"); });

  EXPECT_NE(message.find("--endpoints-out and --labels-out both write '" +
                         directory_.file("x.npy") + "'"),
            std::string::npos)
      << message;
  EXPECT_EQ(outputs.size(), 1u);
}

TEST_F(OutputSetTest, SameFileSpelledDifferentlyNamesBothPaths) {
  OutputSet outputs;
  const std::string first = directory_.file("x.npy");
  const std::string second = (directory_.path() / "." / "x.npy").string();
  outputs.add(first, "--summary");

  const std::string message =
      message_of<InvalidArgument>([&] { outputs.add(second, "--base-out"); });

  EXPECT_NE(message.find("--summary '" + first + "' and --base-out '" + second +
                         "' are the same file"),
            std::string::npos)
      << message;
}

TEST_F(OutputSetTest, OutputOnInputNamesOutputOption) {
  const std::string input = directory_.file("starts.npy");
  write_bytes(input, "input");
  OutputSet outputs;
  outputs.add_input(input, "--starts");

  const std::string message =
      message_of<InvalidArgument>([&] { outputs.add(input, "--endpoints-out"); });

  EXPECT_NE(message.find("output path '" + input + "' of --endpoints-out is also an input "
                         "(--starts '" + input + "')"),
            std::string::npos)
      << message;
}

TEST_F(OutputSetTest, SameFileSpelledDifferentlyRejected) {
  OutputSet outputs;
  outputs.add(directory_.file("a.txt"));

  EXPECT_THROW(outputs.add((directory_.path() / "." / "a.txt").string()), InvalidArgument);
}

TEST_F(OutputSetTest, OutputOnInputRejected) {
  const std::string input = directory_.file("starts.npy");
  write_bytes(input, "input");
  OutputSet outputs;
  outputs.add_input(input, "--starts");

  const std::string message = message_of<InvalidArgument>([&] { outputs.add(input); });

  EXPECT_NE(message.find("output path '" + input + "'"), std::string::npos) << message;
  EXPECT_NE(message.find("is also an input (--starts"), std::string::npos) << message;
  EXPECT_NE(message.find("choose another output path"), std::string::npos) << message;
  EXPECT_EQ(outputs.size(), 0u);
  EXPECT_EQ(directory_.entries(), std::set<std::string>{"starts.npy"});
  EXPECT_EQ(read_bytes(input), "input");
}

TEST_F(OutputSetTest, OutputOnInputSpelledDifferentlyRejected) {
  const std::string input = directory_.file("starts.npy");
  write_bytes(input, "input");
  fs::create_directory(directory_.path() / "sub");
  OutputSet outputs;
  outputs.add_input(input, "--starts");

  EXPECT_THROW(outputs.add((directory_.path() / "sub" / ".." / "starts.npy").string()),
               InvalidArgument);
  EXPECT_EQ(read_bytes(input), "input");
}

TEST_F(OutputSetTest, OutputThroughSymlinkToInputRejected) {
  const std::string input = directory_.file("mixture.json");
  write_bytes(input, "{}");
  const std::string link = directory_.file("link.json");
  fs::create_symlink(input, link);
  OutputSet outputs;
  outputs.add_input(input, "--mixture");

  const std::string message = message_of<InvalidArgument>([&] { outputs.add(link); });

  EXPECT_NE(message.find("'" + link + "'"), std::string::npos) << message;
  EXPECT_NE(message.find("--mixture"), std::string::npos) << message;
  EXPECT_EQ(read_bytes(input), "{}");
}

TEST_F(OutputSetTest, OutputHardLinkedToInputRejected) {
  const std::string input = directory_.file("points.npy");
  write_bytes(input, "input");
  const std::string hard_link = directory_.file("copy.npy");
  fs::create_hard_link(input, hard_link);
  OutputSet outputs;
  outputs.add_input(input, "--points");

  const std::string message = message_of<InvalidArgument>([&] { outputs.add(hard_link); });

  EXPECT_NE(message.find("'" + hard_link + "'"), std::string::npos) << message;
  EXPECT_NE(message.find("--points '" + input + "'"), std::string::npos) << message;
  EXPECT_EQ(read_bytes(hard_link), "input");
}

TEST_F(OutputSetTest, InputAfterOutputRejected) {
  const std::string path = directory_.file("data.npy");
  write_bytes(path, "input");
  OutputSet outputs;
  outputs.add(path);

  const std::string message =
      message_of<InvalidArgument>([&] { outputs.add_input(path, "--points"); });

  EXPECT_NE(message.find("is also an input (--points"), std::string::npos) << message;
}

TEST_F(OutputSetTest, OutputBesideInputAccepted) {
  const std::string input = directory_.file("starts.npy");
  write_bytes(input, "input");
  OutputSet outputs;
  outputs.add_input(input, "--starts");
  outputs.add(directory_.file("endpoints.npy")).stream() << "output";

  outputs.commit_all();

  EXPECT_EQ(read_bytes(input), "input");
  EXPECT_EQ(read_bytes(directory_.file("endpoints.npy")), "output");
}

TEST_F(OutputSetTest, AddInputAfterCommitThrows) {
  OutputSet outputs;
  outputs.commit_all();

  EXPECT_THROW(outputs.add_input(directory_.file("a.txt"), "--mixture"), std::logic_error);
}

TEST_F(OutputSetTest, MissingDirectoryFailsOnAdd) {
  OutputSet outputs;
  outputs.add(directory_.file("a.txt"));
  const std::string path = directory_.file("missing/b.txt");

  const std::string message = message_of<FileError>([&] { outputs.add(path); });

  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_EQ(outputs.size(), 1u);
}

TEST_F(OutputSetTest, AddAfterCommitThrows) {
  OutputSet outputs;
  outputs.add(directory_.file("a.txt"));
  outputs.commit_all();

  EXPECT_THROW(outputs.add(directory_.file("b.txt")), std::logic_error);
}

}  // namespace
}  // namespace fmg
