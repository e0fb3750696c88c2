using Spectre.Console;
using Treechunk.Build;

namespace Treechunk.Cli.Commands;

/// <summary>
/// Shows a build: a Spectre.Console progress bar on a terminal, plain lines on stderr with
/// --verbose otherwise (so logs stay readable and scripts see only the result on stdout).
/// </summary>
public sealed class BuildProgress : IBuildProgress
{
    private readonly bool _verbose;
    private ProgressTask? _task;
    private long _done;

    private BuildProgress(bool verbose) => _verbose = verbose;

    public static T Run<T>(bool verbose, bool quiet, Func<IBuildProgress, T> work)
    {
        var progress = new BuildProgress(verbose);
        if (quiet || Console.IsErrorRedirected)
            return work(progress);
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        return console.Progress()
            .AutoClear(true)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new TransferSpeedColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                progress._task = ctx.AddTask("Reading tree", maxValue: 1);
                return work(progress);
            });
    }

    public void Phase(string name)
    {
        if (_task != null) _task.Description = name;
        else if (_verbose) Console.Error.WriteLine(name + "...");
    }

    public void LayersStarted(int count, long totalBytes)
    {
        if (_task != null)
        {
            _task.MaxValue = Math.Max(1, totalBytes);
            _task.Value = 0;
            _task.Description = $"Writing {count} layers";
        }
        else if (_verbose) Console.Error.WriteLine($"writing {count} layers ({Treechunk.Chunking.Sizes.Format(totalBytes)})");
    }

    public void LayerDone(int index, long uncompressedBytes)
    {
        var done = Interlocked.Add(ref _done, uncompressedBytes);
        if (_task != null) _task.Value = Math.Min(_task.MaxValue, done);
        else if (_verbose) Console.Error.WriteLine($"layer {index + 1} done");
    }

    public void Warning(string message) => Commands.Run.Warn(message);
}
