import { auth0 } from "../../../lib/auth0";

export const dynamic = "force-dynamic";

// The session's user, read on the server with getSession().
export async function GET() {
  const session = await auth0.getSession();
  if (!session) return Response.json({ error: "not_logged_in" }, { status: 401 });
  return Response.json({ email: session.user.email, sub: session.user.sub });
}
