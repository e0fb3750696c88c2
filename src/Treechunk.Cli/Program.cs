using System.CommandLine;
using Treechunk.Cli.Commands;

namespace Treechunk.Cli;

public static class Program
{
    public static int Main(string[] args)
    {
        var root = new RootCommand("""
            treechunk: turn an OS filesystem tree into a chunked, reproducible OCI image.

            Examples:
              treechunk compose build-chunked-oci --rootfs ./rootfs --output oci:./image:latest
              treechunk oci layers ./image
              treechunk oci verify-layers oci:./image:latest
            """);
        foreach (var o in GlobalOptions.All) root.Options.Add(o);
        root.Subcommands.Add(ComposeCommands.Create());
        root.Subcommands.Add(OciCommands.Create());
        root.Subcommands.Add(OstreeCommands.Create());

        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            Console.Error.WriteLine($"treechunk: error: {parsed.Errors[0].Message} (see treechunk --help)");
            return Treechunk.ExitCodes.BadInput;
        }
        return parsed.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
    }
}
