using System.CommandLine;

namespace Treechunk.Cli.Commands;

/// <summary>`treechunk ostree ...`: small repository tools for tests and for users without an ostree binary.</summary>
public static class OstreeCommands
{
    public static Command Create()
    {
        var ostree = new Command("ostree", "Inspect and write OSTree repositories (no libostree needed)");
        OstreeReadCommands.AddTo(ostree);
        OstreeWriteCommands.AddTo(ostree);
        return ostree;
    }
}
