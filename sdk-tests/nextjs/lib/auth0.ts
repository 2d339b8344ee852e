import { Auth0Client } from "@auth0/nextjs-auth0/server";

// Configured only by the environment, as the SDK's README says: AUTH0_DOMAIN, AUTH0_CLIENT_ID, AUTH0_CLIENT_SECRET,
// AUTH0_SECRET, APP_BASE_URL.
export const auth0 = new Auth0Client();
