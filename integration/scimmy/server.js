// A third-party SCIM 2.0 peer for scimsync's contract tests: the npm
// packages scimmy and scimmy-routers (which parse requests, apply PATCH,
// Bulk, filters and paging themselves) behind a small in-memory handler.
//
// Usage: node integration/scimmy/server.js
// Environment: PORT (default 0: a free port), SCIMMY_TOKEN (default
// "scimmy-token"), SCIMMY_BULK_MAX_OPERATIONS (default 1000).
// It prints one line "SCIMMY_URL=http://127.0.0.1:<port>/scim/v2" when
// ready, and serves two test endpoints outside the SCIM base URL:
//   GET  /_state  the exact stored state {"Users": [...], "Groups": [...]}
//   POST /_reset  empties the store
// The handler's own jobs (SCIMMY leaves them to it): ids and meta,
// uniqueness of userName and group displayName (409), case-insensitive
// matching of attributes that are not caseExact, and removing a deleted
// resource from the groups it belonged to.
// Known deviation of SCIMMY 1.3.5 (not fixable here, the router parses the
// filter before this handler runs): filter strings cannot contain an
// escaped quote (`"a\"b"` is refused with 400 invalidFilter) and `\\` is
// not unescaped.
import {randomUUID} from "node:crypto";
import express from "express";
import SCIMMY from "scimmy";
import SCIMMYRouters from "scimmy-routers";

const token = process.env.SCIMMY_TOKEN ?? "scimmy-token";
const basePath = "/scim/v2";

SCIMMY.Config.set({
    patch: true,
    filter: {supported: true, maxResults: 200},
    bulk: {supported: true, maxOperations: Number(process.env.SCIMMY_BULK_MAX_OPERATIONS ?? 1000), maxPayloadSize: 1048576},
    sort: false,
    changePassword: false,
    etag: false,
});

const stores = {User: new Map(), Group: new Map()};
const uniqueAttr = {User: "userName", Group: "displayName"};

// Attributes compared case-sensitively (RFC 7643 caseExact true).
const caseExact = new Set(["id", "externalid", "members.value", "$ref", "members.$ref"]);

// lowerCondition lower-cases the value of one parsed comparison:
// ["eq", "x"], ["not", "eq", "x"]; ["pr"] and ["not", "pr"] have none.
function lowerCondition(cond) {
    const last = cond[cond.length - 1];
    if (cond.length < 2 || typeof last !== "string" || ["pr", "np"].includes(last.toLowerCase())) return cond;
    return [...cond.slice(0, -1), last.toLowerCase()];
}

// lowerFilter returns a copy of SCIMMY's parsed filter expressions
// ([{attr: [comparator, value]}, ...], nested objects for sub-attributes
// and value paths) with the values of case-insensitive attributes
// lower-cased.
function lowerFilter(expr, prefix = "") {
    if (Array.isArray(expr)) return expr.map(e => lowerFilter(e, prefix));
    const out = {};
    for (const [attr, cond] of Object.entries(expr)) {
        const path = (prefix ? prefix + "." : "") + attr.toLowerCase();
        if (!Array.isArray(cond)) out[attr] = lowerFilter(cond, path);
        else if (caseExact.has(path)) out[attr] = cond;
        else if (cond.every(Array.isArray)) out[attr] = cond.map(lowerCondition);
        else out[attr] = lowerCondition(cond);
    }
    return out;
}

// lowerResource returns a copy of a stored resource with the string values
// of case-insensitive attributes lower-cased, for matching only.
function lowerResource(value, prefix = "") {
    if (Array.isArray(value)) return value.map(v => lowerResource(v, prefix));
    if (value === null || typeof value !== "object") {
        return (typeof value === "string" && !caseExact.has(prefix)) ? value.toLowerCase() : value;
    }
    const out = {};
    for (const [k, v] of Object.entries(value)) {
        out[k] = lowerResource(v, (prefix ? prefix + "." : "") + k.toLowerCase());
    }
    return out;
}

function matching(type, filter) {
    const all = [...stores[type].values()];
    if (!filter) return all;
    const lowered = new SCIMMY.Types.Filter(lowerFilter([...filter]));
    return all.filter(r => lowered.match([lowerResource(r)]).length > 0);
}

function clone(v) {
    return JSON.parse(JSON.stringify(v));
}

function declare(Resource, type) {
    SCIMMY.Resources.declare(Resource)
        .egress(async (resource) => {
            if (resource.id) {
                const found = stores[type].get(resource.id);
                if (!found) throw new SCIMMY.Types.Error(404, null, `Resource ${resource.id} not found`);
                return clone(found);
            }
            return matching(type, resource.filter).map(clone);
        })
        .ingress(async (resource, instance) => {
            const data = clone(instance);
            delete data.id;
            delete data.meta;
            delete data.schemas;
            if (resource.id && !stores[type].has(resource.id)) {
                throw new SCIMMY.Types.Error(404, null, `Resource ${resource.id} not found`);
            }
            const key = uniqueAttr[type];
            const wanted = String(data[key] ?? "").toLowerCase();
            for (const other of stores[type].values()) {
                if (other.id !== resource.id && String(other[key] ?? "").toLowerCase() === wanted) {
                    throw new SCIMMY.Types.Error(409, "uniqueness", `${key} is already taken`);
                }
            }
            const now = new Date().toISOString();
            if (resource.id) {
                const old = stores[type].get(resource.id);
                const next = {...data, id: resource.id, meta: {created: old.meta.created, lastModified: now}};
                stores[type].set(resource.id, next);
                return clone(next);
            }
            const id = randomUUID();
            const created = {...data, id, meta: {created: now, lastModified: now}};
            stores[type].set(id, created);
            return clone(created);
        })
        .degress(async (resource) => {
            if (!stores[type].delete(resource.id)) {
                throw new SCIMMY.Types.Error(404, null, `Resource ${resource.id} not found`);
            }
            for (const group of stores.Group.values()) {
                if (Array.isArray(group.members)) {
                    group.members = group.members.filter(m => m.value !== resource.id);
                }
            }
        });
}

declare(SCIMMY.Resources.User, "User");
declare(SCIMMY.Resources.Group, "Group");

const app = express();
app.get("/_state", (req, res) => {
    res.json({Users: [...stores.User.values()], Groups: [...stores.Group.values()]});
});
app.post("/_reset", (req, res) => {
    stores.User.clear();
    stores.Group.clear();
    res.status(204).end();
});
app.use(basePath, new SCIMMYRouters({
    type: "bearer",
    docUri: "https://example.invalid/scimmy",
    handler: (request) => {
        if (request.header("Authorization") !== `Bearer ${token}`) {
            throw new Error("Authorization failed");
        }
        return "scimsync";
    },
}));

const server = app.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => {
    const {port} = server.address();
    console.log(`SCIMMY_URL=http://127.0.0.1:${port}${basePath}`);
});

for (const signal of ["SIGINT", "SIGTERM"]) {
    process.on(signal, () => server.close(() => process.exit(0)));
}
