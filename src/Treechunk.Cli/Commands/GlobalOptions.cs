using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Treechunk.Cli.Commands;

public static class GlobalOptions
{
    public static readonly Option<bool> Verbose = new("--verbose", "-v") { Description = "Print each phase and warning as it happens", Recursive = true };
    public static readonly Option<bool> Debug = new("--debug") { Description = "Show full details (stack traces) for unexpected errors", Recursive = true };

    public static Option<bool> Json() => new("--json") { Description = "Print the result as JSON for scripts" };
}

/// <summary>
/// Runs a command body with the error contract of the README: user errors are one line on stderr
/// with a meaningful exit code; only --debug shows a stack trace.
/// </summary>
public static class Run
{
    public static int Guarded(ParseResult parse, Func<int> body)
    {
        bool debug = parse.GetValue(GlobalOptions.Debug);
        try
        {
            return body();
        }
        catch (TreechunkException e)
        {
            Error(e.Message, debug ? e : null);
            return e.ExitCode;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Error(e.Message, debug ? e : null);
            return ExitCodes.EnvironmentError;
        }
        catch (AggregateException ae) when (ae.Flatten().InnerExceptions.FirstOrDefault() is TreechunkException te)
        {
            Error(te.Message, debug ? ae : null);
            return te.ExitCode;
        }
        catch (AggregateException ae) when (ae.Flatten().InnerExceptions.FirstOrDefault() is IOException or UnauthorizedAccessException)
        {
            Error(ae.Flatten().InnerExceptions[0].Message, debug ? ae : null);
            return ExitCodes.EnvironmentError;
        }
        catch (Exception e)
        {
            Error($"internal error: {e.GetType().Name}: {e.Message.Split('\n')[0]} (please report it; --debug shows details)", debug ? e : null);
            return ExitCodes.InternalError;
        }
    }

    private static void Error(string message, Exception? detail)
    {
        Console.Error.WriteLine("treechunk: error: " + message.ReplaceLineEndings(" "));
        if (detail != null) Console.Error.WriteLine(detail.ToString());
    }

    public static void Warn(string message) => Console.Error.WriteLine("warning: " + message);

    private static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true };

    public static void PrintJson(JsonNode node) => Console.Out.WriteLine(node.ToJsonString(JsonOptions));
}
