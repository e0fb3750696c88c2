using System.CommandLine;

namespace Treechunk.Cli.Commands;

/// <summary>ostree init, commit.</summary>
public static class OstreeWriteCommands
{
    public static void AddTo(Command ostree) { }
}
