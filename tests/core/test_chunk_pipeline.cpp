// The chunk pipeline of FlowBackend and the driver: chunks in flight, the
// rotation of the driver's host buffers, and draining on errors. In place
// of the CUDA backend, a backend that runs the CPU backend behind a
// pipeline of its own lets these tests run without a device.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <deque>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "host/driver.hpp"
#include "host/errors.hpp"

namespace fmg {
namespace {

/// When a DeferringBackend writes a chunk's outputs.
enum class WriteTime {
  /// At submission, as a device that finishes at once. finish_chunk then
  /// checks that the outputs are unchanged, which catches a driver that
  /// hands the buffers of a chunk in flight to another chunk.
  submit,
  /// At finish_chunk, after poison at submission, which catches a driver
  /// that reads the outputs before finish_chunk returns.
  finish,
};

/// Runs the CPU backend through a pipeline of `depth` chunks. Either way it
/// also checks at finish_chunk that the chunk's starting points are
/// unchanged since submission.
class DeferringBackend final : public FlowBackend<double> {
 public:
  DeferringBackend(const Mixture& mixture, const FlowRunOptions& options,
                   std::size_t depth, WriteTime write_time)
      : inner_(make_cpu_flow_backend(make_host_mixture<double>(mixture),
                                     make_flow_problem<double>(options, mixture), 1)),
        depth_(depth), dim_(static_cast<std::size_t>(mixture.dim)),
        num_atoms_(mixture.num_atoms()), write_time_(write_time) {}

  void run_chunk(const FlowChunk<double>& chunk, FlowTally& tally) override {
    inner_->run_chunk(chunk, tally);
  }
  std::string name() const override { return "deferring"; }
  std::string device() const override { return inner_->device(); }
  std::size_t max_chunks_in_flight() const override { return depth_; }

  void submit_chunk(const FlowChunk<double>& chunk) override {
    if (pending_.size() == depth_) throw std::logic_error("pipeline full");
    Pending pending{chunk, Snapshot(chunk, dim_), FlowTally(num_atoms_)};
    if (write_time_ == WriteTime::submit) {
      inner_->run_chunk(chunk, pending.tally);
      pending.written = Snapshot(chunk, dim_);
    } else {
      poison(chunk);
    }
    pending_.push_back(std::move(pending));
    max_in_flight = std::max(max_in_flight, pending_.size());
    // Like the CUDA backend, a submission that fails after work was
    // enqueued leaves the chunk in flight.
    if (++submitted == fail_at_submission) {
      throw std::runtime_error("enqueueing failed");
    }
  }

  void finish_chunk(FlowTally& tally) override {
    if (pending_.empty()) throw std::logic_error("pipeline empty");
    Pending pending = std::move(pending_.front());
    pending_.pop_front();
    const Snapshot now(pending.chunk, dim_);
    if (now.starts != pending.written.starts) starts_overwritten = true;
    if (write_time_ == WriteTime::submit) {
      if (now.outputs_differ(pending.written)) outputs_overwritten = true;
      tally.merge(pending.tally);
    } else {
      inner_->run_chunk(pending.chunk, tally);
    }
    ++finished;
  }

  HostAllocation allocate_host(std::size_t bytes) override {
    ++host_allocations;
    return FlowBackend<double>::allocate_host(bytes);
  }

  std::size_t in_flight() const { return pending_.size(); }

  std::size_t max_in_flight = 0;
  std::size_t submitted = 0;
  std::size_t finished = 0;
  /// The submission, counted from 1, that throws; 0 for none.
  std::size_t fail_at_submission = 0;
  std::size_t host_allocations = 0;
  bool starts_overwritten = false;
  bool outputs_overwritten = false;

 private:
  /// Copies of a chunk's host arrays.
  struct Snapshot {
    std::vector<double> starts, base, endpoints;
    std::vector<std::int32_t> labels;

    Snapshot() = default;
    Snapshot(const FlowChunk<double>& chunk, std::size_t dim) {
      const std::size_t values = chunk.count * dim;
      if (chunk.starts) starts.assign(chunk.starts, chunk.starts + values);
      if (chunk.base_samples) {
        base.assign(chunk.base_samples, chunk.base_samples + values);
      }
      if (chunk.endpoints) {
        endpoints.assign(chunk.endpoints, chunk.endpoints + values);
      }
      if (chunk.labels) labels.assign(chunk.labels, chunk.labels + chunk.count);
    }

    bool outputs_differ(const Snapshot& other) const {
      return base != other.base || endpoints != other.endpoints ||
             labels != other.labels;
    }
  };

  struct Pending {
    FlowChunk<double> chunk;
    Snapshot written;  ///< Starting points, and outputs written at submit.
    FlowTally tally;
  };

  void poison(const FlowChunk<double>& chunk) const {
    const std::size_t values = chunk.count * dim_;
    const double nan = std::numeric_limits<double>::quiet_NaN();
    if (chunk.endpoints) std::fill(chunk.endpoints, chunk.endpoints + values, nan);
    if (chunk.base_samples) {
      std::fill(chunk.base_samples, chunk.base_samples + values, nan);
    }
    if (chunk.labels) std::fill(chunk.labels, chunk.labels + chunk.count, -7);
  }

  std::unique_ptr<FlowBackend<double>> inner_;
  std::size_t depth_;
  std::size_t dim_;
  int num_atoms_;
  WriteTime write_time_;
  std::deque<Pending> pending_;
};

struct Outputs {
  std::vector<double> base, endpoints;
  std::vector<std::int32_t> labels;
  FlowTally tally;
};

template <class Value>
ArraySink append_to(std::vector<Value>& out) {
  return [&out](const void* data, std::size_t bytes) {
    const auto* p = static_cast<const Value*>(data);
    out.insert(out.end(), p, p + bytes / sizeof(Value));
  };
}

FlowRunIo sinks_into(Outputs& out) {
  FlowRunIo io;
  io.base_samples = append_to(out.base);
  io.endpoints = append_to(out.endpoints);
  io.labels = append_to(out.labels);
  return io;
}

FlowRunOptions small_run() {
  FlowRunOptions options;
  options.backend = BackendChoice::cpu;
  options.num_samples = 1001;
  options.chunk_size = 97;
  options.threads = 1;
  options.method = Method::rk4;
  options.steps = 16;
  options.progress = false;
  return options;
}

void expect_same_outputs(const Outputs& run, const Outputs& reference) {
  EXPECT_EQ(run.base, reference.base);
  EXPECT_EQ(run.endpoints, reference.endpoints);
  EXPECT_EQ(run.labels, reference.labels);
  EXPECT_EQ(run.tally.label_counts, reference.tally.label_counts);
  EXPECT_EQ(run.tally.status_counts, reference.tally.status_counts);
  EXPECT_EQ(run.tally.step_histogram, reference.tally.step_histogram);
  EXPECT_EQ(run.tally.accepted_sum, reference.tally.accepted_sum);
  EXPECT_EQ(run.tally.evaluations_sum, reference.tally.evaluations_sum);
}

TEST(ChunkPipeline, DeferredChunksMatchDirectRun) {
  const Mixture mixture = builtin_example();
  const FlowRunOptions options = small_run();
  Outputs reference;
  reference.tally = run_flow(mixture, options, sinks_into(reference)).tally;

  for (WriteTime write_time : {WriteTime::submit, WriteTime::finish}) {
    for (std::size_t depth : {std::size_t{1}, std::size_t{2}, std::size_t{3}}) {
      SCOPED_TRACE(testing::Message()
                   << "depth " << depth << " write at "
                   << (write_time == WriteTime::submit ? "submit" : "finish"));
      DeferringBackend backend(mixture, options, depth, write_time);
      Outputs run;
      run.tally = run_flow_on(backend, mixture, options, sinks_into(run)).tally;

      expect_same_outputs(run, reference);
      EXPECT_FALSE(backend.outputs_overwritten);
      EXPECT_EQ(backend.max_in_flight, depth);
      EXPECT_EQ(backend.finished, 11u);  // ceil(1001 / 97)
      EXPECT_EQ(backend.in_flight(), 0u);
      // Base samples, endpoints and labels in each of `depth` slots.
      EXPECT_EQ(backend.host_allocations, 3 * depth);
    }
  }
}

TEST(ChunkPipeline, StartsStayIntactWhileInFlight) {
  const Mixture mixture = builtin_example();
  const FlowRunOptions options = small_run();
  std::vector<double> starts(options.num_samples * 2);
  for (std::size_t i = 0; i < starts.size(); ++i) {
    starts[i] = 2.5 * std::sin(0.37 * static_cast<double>(i));
  }
  Outputs reference;
  FlowRunIo reference_io = sinks_into(reference);
  reference_io.starts = &starts;
  reference.tally = run_flow(mixture, options, reference_io).tally;

  for (WriteTime write_time : {WriteTime::submit, WriteTime::finish}) {
    SCOPED_TRACE(write_time == WriteTime::submit ? "submit" : "finish");
    DeferringBackend backend(mixture, options, 3, write_time);
    Outputs run;
    FlowRunIo io = sinks_into(run);
    io.starts = &starts;
    run.tally = run_flow_on(backend, mixture, options, io).tally;

    expect_same_outputs(run, reference);
    EXPECT_FALSE(backend.starts_overwritten);
    EXPECT_EQ(backend.host_allocations, 4u * 3u);
  }
}

TEST(ChunkPipeline, TallyOnlyRunAllocatesNoHostArrays) {
  const Mixture mixture = builtin_example();
  const FlowRunOptions options = small_run();
  Outputs reference;
  reference.tally = run_flow(mixture, options, sinks_into(reference)).tally;

  DeferringBackend backend(mixture, options, 2, WriteTime::finish);
  const FlowTally tally = run_flow_on(backend, mixture, options).tally;

  EXPECT_EQ(backend.host_allocations, 0u);
  EXPECT_EQ(tally.label_counts, reference.tally.label_counts);
  EXPECT_EQ(tally.step_histogram, reference.tally.step_histogram);
}

TEST(ChunkPipeline, FailingSinkDrainsChunksInFlight) {
  const Mixture mixture = builtin_example();
  const FlowRunOptions options = small_run();
  DeferringBackend backend(mixture, options, 3, WriteTime::finish);
  FlowRunIo io;
  int calls = 0;
  io.labels = [&calls](const void*, std::size_t) {
    if (++calls == 2) throw FileError("disk full");
  };

  EXPECT_THROW(run_flow_on(backend, mixture, options, io), FileError);
  EXPECT_EQ(backend.in_flight(), 0u);
}

TEST(ChunkPipeline, FailedSubmissionDrainsChunksInFlight) {
  const Mixture mixture = builtin_example();
  const FlowRunOptions options = small_run();
  DeferringBackend backend(mixture, options, 3, WriteTime::finish);
  backend.fail_at_submission = 5;
  Outputs run;

  EXPECT_THROW(run_flow_on(backend, mixture, options, sinks_into(run)),
               std::runtime_error);
  EXPECT_EQ(backend.in_flight(), 0u);
  EXPECT_EQ(backend.finished, 5u);
}

TEST(ChunkPipeline, DefaultPipelineHoldsOneChunk) {
  const Mixture mixture = builtin_example();
  const FlowRunOptions options = small_run();
  auto backend = make_cpu_flow_backend(make_host_mixture<double>(mixture),
                                       make_flow_problem<double>(options, mixture), 1);
  EXPECT_EQ(backend->max_chunks_in_flight(), 1u);
  std::vector<std::int32_t> direct_labels(50), labels(50);
  FlowChunk<double> chunk;
  chunk.first_index = 123;
  chunk.count = 50;
  chunk.labels = direct_labels.data();
  FlowTally direct(mixture.num_atoms());
  backend->run_chunk(chunk, direct);

  chunk.labels = labels.data();
  FlowTally tally(mixture.num_atoms());
  EXPECT_THROW(backend->finish_chunk(tally), std::logic_error);
  backend->submit_chunk(chunk);
  EXPECT_THROW(backend->submit_chunk(chunk), std::logic_error);
  backend->finish_chunk(tally);

  EXPECT_EQ(labels, direct_labels);
  EXPECT_EQ(tally.label_counts, direct.label_counts);
  EXPECT_EQ(tally.step_histogram, direct.step_histogram);
  EXPECT_THROW(backend->finish_chunk(tally), std::logic_error);
}

TEST(ChunkPipeline, DefaultHostAllocationIsUsable) {
  const Mixture mixture = builtin_example();
  auto backend = make_cpu_flow_backend(make_host_mixture<double>(mixture),
                                       make_flow_problem<double>(small_run(), mixture), 1);
  EXPECT_EQ(backend->allocate_host(0), nullptr);
  HostAllocation memory = backend->allocate_host(64 * sizeof(double));
  ASSERT_NE(memory, nullptr);
  auto* values = static_cast<double*>(memory.get());
  std::fill(values, values + 64, 1.5);
  EXPECT_EQ(values[63], 1.5);
}

}  // namespace
}  // namespace fmg
