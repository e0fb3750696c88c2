using System.CommandLine;

namespace Treechunk.Cli.Commands;

/// <summary>ostree refs, log, ls, fsck.</summary>
public static class OstreeReadCommands
{
    public static void AddTo(Command ostree) { }
}
