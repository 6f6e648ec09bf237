// Who is logged in and what their role allows (the server checks every action again).
export const session = { name: null, role: null, auth: true };
const RANK = { viewer: 0, operator: 1, approver: 2, admin: 3 };
export const can = (role) => session.role !== null && session.role in RANK && RANK[session.role] >= RANK[role];
