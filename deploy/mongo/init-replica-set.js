// One-shot replica-set bootstrap, run by the compose service `mongo-init`:
//   mongosh "mongodb://mongo:27017/?directConnection=true" /deploy/init-replica-set.js
// Turns the single mongod (started with --replSet rs0) into the replica set rs0 the first
// time, does nothing on later runs, and exits 0 only once this node is PRIMARY.
// The member is announced as MONGO_RS_MEMBER (default mongo:27017): the address clients on
// the compose network use, since drivers connect to the hosts the replica set advertises.

const member =
  (typeof process !== "undefined" && process.env.MONGO_RS_MEMBER) || "mongo:27017";

function initiated() {
  try {
    rs.status();
    return true;
  } catch (e) {
    if (e.codeName === "NotYetInitialized" || e.code === 94) return false;
    throw e;
  }
}

if (initiated()) {
  print(`replica set ${rs.conf()._id} already initiated; nothing to do`);
} else {
  try {
    rs.initiate({ _id: "rs0", members: [{ _id: 0, host: member }] });
    print(`replica set rs0 initiated with member ${member}`);
  } catch (e) {
    // another mongo-init run got there first
    if (e.codeName !== "AlreadyInitialized" && e.code !== 23) throw e;
  }
}

// The services' login (MONGO_APP_USER / MONGO_APP_PASSWORD): data of any database, no
// administration of users, roles or the replica set. Created once, its password kept in
// step with .env on every run.
function ensureAppUser() {
  const env = typeof process !== "undefined" ? process.env : {};
  const user = env.MONGO_APP_USER || "guahao";
  const pwd = env.MONGO_APP_PASSWORD;
  if (!pwd) throw new Error("MONGO_APP_PASSWORD is not set");
  const admin = db.getSiblingDB("admin");
  const roles = [{ role: "readWriteAnyDatabase", db: "admin" }];
  if (admin.getUser(user) === null) {
    admin.createUser({ user, pwd, roles });
    print(`application user ${user} created`);
  } else {
    admin.updateUser(user, { pwd, roles });
  }
}

for (let i = 0; i < 60; i++) {
  if (db.hello().isWritablePrimary) {
    print("rs0: this node is PRIMARY");
    ensureAppUser();
    quit(0);
  }
  sleep(1000);
}
print("rs0: no PRIMARY after 60 s");
quit(1);
