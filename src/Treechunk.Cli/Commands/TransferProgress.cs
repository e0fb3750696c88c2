using System.Collections.Concurrent;
using Spectre.Console;
using Treechunk.Oci;

namespace Treechunk.Cli.Commands;

/// <summary>
/// Shows a transfer on a terminal: a bar per blob in flight (bytes, rate) and one overall,
/// with the count of blobs skipped because the destination had them. Nothing when stderr is not
/// a terminal or with --json (scripts read the summary instead).
/// </summary>
public sealed class TransferProgress : ITransferProgress
{
    private readonly ProgressContext _ctx;
    private readonly ProgressTask _overall;
    private readonly ConcurrentDictionary<string, ProgressTask> _blobs = new(StringComparer.Ordinal);
    private int _skipped, _done;

    private TransferProgress(ProgressContext ctx)
    {
        _ctx = ctx;
        _overall = ctx.AddTask("blobs", maxValue: 1);
    }

    public static T Run<T>(bool quiet, Func<ITransferProgress?, T> work)
    {
        if (quiet || Console.IsErrorRedirected) return work(null);
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        return console.Progress()
            .AutoClear(true)
            .HideCompleted(true)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new DownloadedColumn(), new TransferSpeedColumn())
            .Start(ctx => work(new TransferProgress(ctx)));
    }

    public void BlobStarted(Descriptor blob)
    {
        lock (_overall) _overall.MaxValue = Math.Max(1, _overall.MaxValue + blob.Size);
        _blobs[blob.Digest] = _ctx.AddTask(blob.Digest[7..19], maxValue: Math.Max(1, blob.Size));
    }

    public void BlobProgress(Descriptor blob, long bytes)
    {
        if (_blobs.TryGetValue(blob.Digest, out var task)) task.Increment(bytes);
        lock (_overall) _overall.Increment(bytes);
    }

    public void BlobDone(Descriptor blob, bool skipped)
    {
        if (_blobs.TryRemove(blob.Digest, out var task))
        {
            task.Value = task.MaxValue;
            task.StopTask();
            task.IsIndeterminate = false;
        }
        int done = Interlocked.Increment(ref _done);
        int skips = skipped ? Interlocked.Increment(ref _skipped) : _skipped;
        lock (_overall)
        {
            if (skipped) _overall.Increment(blob.Size);
            _overall.Description = $"{done} blobs ({skips} already there)";
        }
    }
}
